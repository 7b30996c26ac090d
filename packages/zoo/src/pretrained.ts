import { ConfigError, DataFormatError, decodeSafetensors, decodeTorchFile, isTorchFile, type HostTensor } from '@kiln/core';
import { StateDictMismatchError, type Module, type StateDictProblem } from '@kiln/layers';
import { GoogLeNet } from './googlenet.js';
import { readWeightFile } from './host-files.js';
import { InceptionV3 } from './inception-v3.js';
import { TORCHVISION_WEIGHTS, torchvisionConverter, type Preprocessing, type TorchvisionWeights } from './torchvision-weights.js';
import { KILN_WEIGHTS_FORMAT, assignChecked, identityConverter } from './weight-transfer.js';
import { ZooModel } from './zoo-model.js';

/** What a weight file turned out to be: PyTorch's `torch.save`, safetensors in PyTorch layouts, or Kiln's own. */
export type WeightFileFormat = 'pth' | 'safetensors' | 'kiln';

/** A decoded weight file: its detected format, its tensors, and what was converted on the way. */
export interface WeightFile {
  /** The format the file's first bytes identified. */
  format: WeightFileFormat;
  /** Every tensor in the file by dotted path (wrappers such as `state_dict.` still on). */
  tensors: Record<string, HostTensor>;
  /** safetensors metadata (empty for .pth). */
  metadata: Record<string, string>;
  /** Conversions made while reading (dtype changes), one line each. */
  notes: string[];
}

/**
 * Decodes a weight file, telling the formats apart by their first bytes rather than the file name:
 * a zip (`PK\x03\x04`, torch.save ≥ 1.6) is read as .pth, an 8-byte header length followed by `{`
 * as safetensors (Kiln's own when its metadata says `format: kiln-weights`).
 */
export function decodeWeightFile(bytes: Uint8Array, file = '<weights>'): WeightFile {
  if (isTorchFile(bytes)) {
    const { tensors, notes } = decodeTorchFile(bytes, file);
    return { format: 'pth', tensors, metadata: {}, notes };
  }
  if (bytes.length >= 9 && bytes[8] === 0x7b) {
    const { tensors, metadata } = decodeSafetensors(bytes, file);
    return { format: metadata.format === KILN_WEIGHTS_FORMAT ? 'kiln' : 'safetensors', tensors, metadata, notes: [] };
  }
  throw new DataFormatError(file, 'not a weight file Kiln can read', {
    offset: 0,
    expected: 'a PyTorch torch.save file (.pth/.pt, a zip) or .safetensors',
    found: `first bytes ${Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')}`,
  });
}

/**
 * Finds the model's state dict inside whatever wraps it: a checkpoint's `state_dict.` or `model.`,
 * DataParallel's `module.`, Lightning's `state_dict.model.` — any dotted prefix. The prefix chosen is
 * the one under which the most of the model's own keys appear; tensors outside it (optimizer state,
 * EMA copies) are left out, and tensors under it keep their name without it.
 */
export function selectStateDict(tensors: Record<string, HostTensor>, modelKeys: Iterable<string>): {
  /** The tensors under `prefix`, renamed without it (the input unchanged when `prefix` is `''`). */
  tensors: Record<string, HostTensor>;
  /** The wrapper prefix chosen, trailing dot included (`state_dict.`, `module.`), or `''` for none. */
  prefix: string;
} {
  const own = new Set(modelKeys);
  const votes = new Map<string, number>();
  for (const key of Object.keys(tensors)) {
    // Try every split of the key at a dot: `state_dict.module.conv1.weight` votes for
    // `state_dict.module.` if the model has `conv1.weight`.
    for (let start = 0; ; ) {
      if (own.has(key.slice(start))) votes.set(key.slice(0, start), (votes.get(key.slice(0, start)) ?? 0) + 1);
      const dot = key.indexOf('.', start);
      if (dot < 0) break;
      start = dot + 1;
    }
  }
  let prefix = '';
  let best = votes.get('') ?? 0;
  for (const [p, v] of votes) if (v > best || (v === best && p.length < prefix.length)) [prefix, best] = [p, v];
  if (prefix === '') return { tensors, prefix };
  const out: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(tensors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = t;
  return { tensors: out, prefix };
}

/** Options of {@link loadPretrained}. */
export interface LoadPretrainedOptions {
  /** Every missing, unexpected or wrongly shaped key is an error (a `StateDictMismatchError` listing all). Default true. */
  strict?: boolean;
  /**
   * Neither load nor require the classification head (`model.headPath`): for fine-tuning ImageNet
   * weights on another number of classes. Default false.
   */
  skipHead?: boolean;
  /** Names the source in messages when bytes are passed. */
  file?: string;
  /** Published weights to recognise by SHA-256 (default {@link TORCHVISION_WEIGHTS}). */
  known?: Record<string, TorchvisionWeights>;
}

/** What {@link loadPretrained} found in the file and did with it. */
export interface PretrainedResult {
  /** The file's format; `kiln` files are loaded as they are, the others converted from PyTorch layouts. */
  format: WeightFileFormat;
  /** Problems found (only with `strict: false`; strict loading throws instead). */
  problems: StateDictProblem[];
  /** The wrapper prefix the state dict was found under (`''`, `state_dict.`, `module.`). */
  prefix: string;
  /** The published torchvision weights this file is, recognised by its SHA-256; undefined otherwise. */
  weights?: TorchvisionWeights & {
    /** The entry's key in {@link TORCHVISION_WEIGHTS} (e.g. `resnet50_v2`). */
    key: string;
  };
  /** How images must be prepared for these weights (known torchvision weights only). */
  preprocessing?: Preprocessing;
  /** Lower-case hex SHA-256 of the file. */
  sha256: string;
  /** What was converted, ignored or switched on, one line each. */
  notes: string[];
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The published torchvision weights whose recorded SHA-256 (or recorded prefix of it) matches. */
export function identifyTorchvisionWeights(sha256: string, known: Record<string, TorchvisionWeights> = TORCHVISION_WEIGHTS): (TorchvisionWeights & {
  /** The matching entry's key in `known` (by default {@link TORCHVISION_WEIGHTS}, e.g. `resnet50_v2`). */
  key: string;
}) | undefined {
  for (const [key, w] of Object.entries(known)) if (w.sha256.length >= 8 && sha256.startsWith(w.sha256)) return { key, ...w };
  return undefined;
}

/** Auxiliary classifiers torchvision's files carry and a Kiln model built without them lacks. */
function absentAuxPrefixes(model: Module): string[] {
  if (model instanceof GoogLeNet && !model.aux1) return ['aux1.', 'aux2.'];
  if (model instanceof InceptionV3 && !model.auxLogits) return ['AuxLogits.'];
  return [];
}

/**
 * Loads pretrained weights into `model` from a path or the file's bytes: PyTorch `.pth`/`.pt`
 * (torch.save; read by Kiln's restricted unpickler, which never runs the pickle's code), or
 * `.safetensors` in torchvision's names and layouts, or a Kiln weight file. The state dict is
 * found inside checkpoint wrappers and DataParallel prefixes, auxiliary-classifier weights the model
 * was built without are ignored, and layouts are converted (OIHW → HWIO, `[out, in]` → `[in, out]`).
 * When the file is one of the published torchvision weights (by SHA-256) its preprocessing is
 * returned, and GoogLeNet / Inception v3 get `transformInput` switched on as torchvision does.
 */
export async function loadPretrained(model: Module, source: string | Uint8Array, options: LoadPretrainedOptions = {}): Promise<PretrainedResult> {
  const file = typeof source === 'string' ? source : (options.file ?? '<weights>');
  const bytes = typeof source === 'string' ? await readWeightFile(source) : source;
  const decoded = decodeWeightFile(bytes, file);
  const notes = [...decoded.notes];
  const modelKeys = [...model.namedParameters().map(([k]) => k), ...model.namedBuffers().map(([k]) => k)];
  const { tensors, prefix } = selectStateDict(decoded.tensors, modelKeys);
  if (prefix) notes.push(`state dict found under '${prefix}'`);

  const selected = { ...tensors };
  for (const aux of absentAuxPrefixes(model)) {
    const dropped = Object.keys(selected).filter((k) => k.startsWith(aux));
    for (const k of dropped) delete selected[k];
    if (dropped.length) notes.push(`${dropped.length} tensors of the auxiliary classifier '${aux.slice(0, -1)}' ignored (the model was built without it)`);
  }
  let isHead = (_key: string) => false;
  if (options.skipHead) {
    if (!(model instanceof ZooModel)) throw new ConfigError('skipHead', 'a zoo model (one with a classification head)', model.typeName);
    const head = `${model.headPath}.`;
    isHead = (key) => key.startsWith(head);
    for (const k of Object.keys(selected)) if (isHead(k)) delete selected[k];
    notes.push(`head '${model.headPath}' not loaded`);
  }

  const converter = decoded.format === 'kiln' ? identityConverter : torchvisionConverter(model);
  const problems = assignChecked(model, selected, converter, { strict: false, where: file, checkOnly: true }).filter((p) => !(p.kind === 'missing' && isHead(p.key)));
  if ((options.strict ?? true) && problems.length) throw new StateDictMismatchError(problems, `${model.typeName} ← ${file} (${converter.source} layout)`);
  assignChecked(model, selected, converter, { strict: false, where: file });

  const sha256 = await sha256Hex(bytes);
  const weights = identifyTorchvisionWeights(sha256, options.known);
  if (weights?.transformInput && (model instanceof GoogLeNet || model instanceof InceptionV3) && !model.transformInput) {
    model.transformInput = true;
    notes.push(`transformInput switched on (${weights.torchvision} expects inputs in [-1, 1])`);
  }
  return { format: decoded.format, problems, prefix, sha256, notes, ...(weights ? { weights, preprocessing: weights.preprocessing } : {}) };
}
