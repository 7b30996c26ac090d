import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tf, DataFormatError, NotFoundError } from '@kiln/core';
import { StateDictMismatchError } from '@kiln/layers';
import type { ChannelStats } from '@kiln/data';
import { createModel, identifyTorchvisionWeights, loadPretrained, modelEntry, type TorchvisionWeights, type ZooModel } from '@kiln/zoo';
import { checkpointTensors, readCheckpoint, type Callback, type CheckpointMeta } from '@kiln/trainer';
import type { Preprocessing } from './datasets.js';
import { KNOWN_WEIGHTS, resolveWeightsFile } from './pretrained-file.js';

/**
 * What a checkpoint written by `kiln train` or `kiln fine-tune` records under `cli`, so that
 * `kiln evaluate`, `kiln predict` and `kiln fine-tune --from` rebuild the same model and feed it
 * input the way it was trained, with nothing but the checkpoint.
 */
export interface CliCheckpointInfo {
  /** Zoo model name. */
  model: string;
  /** The `--dataset` spec it was trained on. */
  dataset: string;
  numClasses: number;
  /** Class names by output index. */
  classes?: string[];
  /** [H, W, C] the model was built for: rebuilding with it picks the same channels and stem variant. */
  inputShape?: [number, number, number];
  /** Size, channels, resize mode and per-channel mean/std of the input. */
  preprocessing?: Preprocessing;
  /** Same numbers as `preprocessing.mean/std`; kept for readers of the first checkpoint layout. */
  normalization: ChannelStats;
}

/** A callback that writes `info` into every checkpoint the run saves. */
export function recordInfo(info: CliCheckpointInfo): Callback {
  return {
    onSaveCheckpoint: (_t, _m, checkpoint) => {
      checkpoint.cli = info;
    },
  };
}

/** A checkpoint's CLI record, completed for checkpoints from before it recorded preprocessing (Fashion-MNIST, 28×28). */
export interface ResolvedInfo extends Required<Omit<CliCheckpointInfo, 'normalization'>> {
  normalization: ChannelStats;
}

/** Reads the `cli` record of a checkpoint (no tensors are kept). */
export function readCliInfo(file: string): { info: ResolvedInfo; meta: CheckpointMeta } {
  const ck = readCheckpoint(file);
  tf.dispose(checkpointTensors(ck));
  const raw = ck.meta.cli as Partial<CliCheckpointInfo> | undefined;
  if (!raw?.model || !raw.normalization) {
    throw new DataFormatError(file, 'the checkpoint has no record of its model and input preprocessing', { hint: 'use a checkpoint written by `kiln train` or `kiln fine-tune`' });
  }
  validateCliInfo(raw, file);
  return { info: resolveInfo(raw as CliCheckpointInfo), meta: ck.meta };
}

/** Most classes a recorded model may declare: sizes come from the file, so they are bounded before anything is built. */
export const MAX_CLASSES = 100_000;

/**
 * Checks a checkpoint's CLI record before it decides anything: model sizes (classes, input shape)
 * within bounds, class names and statistics consistent with them, statistics finite with positive
 * spread. A damaged or crafted record gives a DataFormatError naming the field, not a stack trace
 * or a multi-gigabyte allocation.
 */
export function validateCliInfo(raw: Partial<CliCheckpointInfo>, file: string): void {
  const bad = (field: string, expected: string, found: unknown): never => {
    throw new DataFormatError(file, `checkpoint field 'cli.${field}' is invalid`, { expected, found: JSON.stringify(found)?.slice(0, 120) ?? String(found) });
  };
  const int = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  if (typeof raw.model !== 'string') bad('model', 'a zoo model name', raw.model);
  if (!int(raw.numClasses, 1, MAX_CLASSES)) bad('numClasses', `an integer in 1…${MAX_CLASSES}`, raw.numClasses);
  if (raw.classes !== undefined && !(Array.isArray(raw.classes) && raw.classes.length === raw.numClasses && raw.classes.every((c) => typeof c === 'string'))) bad('classes', `${raw.numClasses} class names`, raw.classes);
  if (raw.inputShape !== undefined && !(Array.isArray(raw.inputShape) && raw.inputShape.length === 3 && int(raw.inputShape[0], 1, 8192) && int(raw.inputShape[1], 1, 8192) && int(raw.inputShape[2], 1, 4))) bad('inputShape', '[height, width, channels] with sides in 1…8192 and 1…4 channels', raw.inputShape);
  const { mean, std } = raw.normalization ?? ({} as { mean?: unknown; std?: unknown });
  const channels = raw.inputShape?.[2];
  const finiteList = (v: unknown) => Array.isArray(v) && v.length >= 1 && v.length <= 4 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!finiteList(mean) || (channels !== undefined && (mean as number[]).length !== channels && (mean as number[]).length !== 1)) bad('normalization.mean', `${channels ?? '1–4'} finite numbers`, mean);
  if (!finiteList(std) || (std as number[]).some((x) => x <= 0) || (std as number[]).length !== (mean as number[]).length) bad('normalization.std', 'as many positive finite numbers as the mean', std);
}

/** Fills what older checkpoints did not record: they were Fashion-MNIST runs at the model's own input size. */
export function resolveInfo(raw: CliCheckpointInfo): ResolvedInfo {
  const entry = modelEntry(raw.model);
  const channels = raw.inputShape?.[2] ?? raw.preprocessing?.channels ?? entry.inputShape[2];
  const size = raw.preprocessing?.size ?? (raw.inputShape ? [raw.inputShape[0], raw.inputShape[1]] : [28, 28]);
  const classes = raw.classes ?? Array.from({ length: raw.numClasses }, (_, i) => String(i));
  return {
    model: raw.model,
    dataset: raw.dataset,
    numClasses: raw.numClasses,
    classes,
    inputShape: raw.inputShape ?? [size[0], size[1], channels],
    preprocessing: raw.preprocessing ?? { dataset: raw.dataset, size: size as [number, number], channels, resize: 'stretch', mean: raw.normalization.mean, std: raw.normalization.std },
    normalization: raw.normalization,
  };
}

/** The zoo model a record describes, with random (or, with `skipInit`, zero) weights. */
export function modelFor(info: { model: string; inputShape: [number, number, number]; numClasses: number }, options: { skipInit?: boolean } = {}): ZooModel {
  return createModel(info.model, { inputShape: info.inputShape, numClasses: info.numClasses, skipInit: options.skipInit });
}

/** Softmax probabilities of a batch of logits, the `k` most probable classes of each row by name. */
export async function topClasses(logits: tf.Tensor, classes: string[], k: number): Promise<{ class: string; probability: number }[][]> {
  const { values, indices } = tf.tidy(() => tf.topk(tf.softmax(logits), Math.min(k, classes.length)));
  const [p, i] = await Promise.all([values.data(), indices.data()]);
  tf.dispose([values, indices]);
  const kk = values.shape[1] as number;
  return Array.from({ length: logits.shape[0] }, (_, row) =>
    Array.from({ length: kk }, (_, j) => ({ class: classes[i[row * kk + j]] ?? String(i[row * kk + j]), probability: Number(p[row * kk + j].toFixed(6)) })),
  );
}

/** `--pretrained FILE`: what is known of the weights before the model is built. */
export interface PretrainedSource {
  file: string;
  /** The published torchvision weights the file is (by SHA-256), if it is one. */
  known?: TorchvisionWeights & { key: string };
}

/**
 * `--pretrained FILE|NAME`: a path, or a published torchvision weight name fetched as
 * `resolveWeightsFile` does (torch.hub's cache, Kiln's, then a checked download). Published weights
 * are recognised by name or by their SHA-256, so the data can be prepared as they expect.
 */
export async function identifyPretrained(spec: string, log: (line: string) => void): Promise<PretrainedSource> {
  const resolved = await resolveWeightsFile(spec, { log });
  if (resolved.known) return resolved;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(resolved.file);
  } catch (e) {
    throw new NotFoundError(`pretrained weights '${spec}'`, [resolved.file], `${(e as Error).message}; pass a .pth/.pt/.safetensors file, a Kiln checkpoint, or a torchvision weight name (${KNOWN_WEIGHTS.slice(0, 4).join(', ')}, …)`);
  }
  return { file: resolved.file, known: identifyTorchvisionWeights(createHash('sha256').update(bytes).digest('hex')) };
}

/**
 * Loads pretrained weights into a freshly built model: everything but the classification head when
 * the head's shape differs from the file's (the usual fine-tuning start), all of it otherwise.
 * A Kiln checkpoint is read as such; other files (.pth/.pt, .safetensors, Kiln weight files) by
 * `loadPretrained`, which converts torchvision's names and layouts. Any other mismatch (e.g. a
 * 3-channel stem for 1-channel data) fails with the list of mismatched layers.
 */
export async function loadPretrainedWeights(model: ZooModel, source: PretrainedSource, err: (line: string) => void): Promise<void> {
  const head = `${model.headPath}.`;
  const own = Object.fromEntries([...model.namedParameters().map(([k, p]) => [k, p.variable.shape]), ...model.namedBuffers().map(([k, b]) => [k, b.shape])]) as Record<string, number[]>;
  const state = kilnCheckpointState(source.file);
  let headFits: boolean;
  let how: string;
  if (state) {
    headFits = Object.entries(state).every(([k, t]) => !k.startsWith(head) || (own[k] !== undefined && tf.util.arraysEqual(own[k], t.shape)));
    const sd = headFits ? state : Object.fromEntries(Object.entries(state).filter(([k]) => !k.startsWith(head)));
    try {
      const problems = model.loadStateDict(sd, { strict: false }).filter((p) => !(p.kind === 'missing' && !headFits && p.key.startsWith(head)));
      if (problems.length) throw new StateDictMismatchError(problems, `${model.typeName} ← ${source.file}`);
    } finally {
      tf.dispose(Object.values(state));
    }
    how = 'Kiln checkpoint';
  } else {
    const probe = await loadPretrained(model, source.file, { strict: false }).catch(() => undefined);
    headFits = !!probe && !probe.problems.some((p) => p.key.startsWith(head));
    const result = await loadPretrained(model, source.file, { skipHead: !headFits });
    how = `${result.format}${source.known ? `, ${source.known.torchvision}` : ''}`;
    for (const note of result.notes) err(`pretrained: ${note}`);
  }
  err(`pretrained: ${source.file} (${how})${headFits ? '' : `, head '${model.headPath}' left new (${model.numClasses} classes)`}`);
}

/** The model tensors of a Kiln checkpoint, or undefined when the file is not one. */
function kilnCheckpointState(file: string): Record<string, tf.Tensor> | undefined {
  try {
    const ck = readCheckpoint(file);
    const model = ck.modelState;
    ck.modelState = {};
    tf.dispose(checkpointTensors(ck));
    return model;
  } catch (e) {
    if (e instanceof DataFormatError) return undefined;
    throw e;
  }
}
