import { tf, DataFormatError, decodeSafetensors, encodeSafetensors, fromHost, type HostTensor } from '@kiln/core';
import { crc32c } from './loggers/crc32c.js';
import { validateCheckpointMeta } from './checkpoint-schema.js';
import { defaultStorage, readFileSyncOnHost } from './host/node.js';
import type { Storage } from './storage/storage.js';

/** Version of the checkpoint layout below; bumped when a reader would misread an older file. */
export const CHECKPOINT_FORMAT = 2;
/** The safetensors metadata key holding the JSON metadata (safetensors metadata values are strings). */
const META_KEY = 'kiln';

/**
 * JSON half of a checkpoint: where the run was and every piece of non-tensor state needed to
 * continue it. Callbacks may add their own keys in `onSaveCheckpoint`.
 */
export interface CheckpointMeta {
  /** Version of this layout (`CHECKPOINT_FORMAT`). */
  format: number;
  /** Epoch to continue in (0-based) and the batches of it already trained. */
  epoch: number;
  /** Batches of `epoch` already trained (0 at an epoch boundary). */
  batch: number;
  /** Optimizer steps taken so far. */
  globalStep: number;
  /** The trainer's `callbackMetrics` when saved (epoch means: `train_loss`, `val_acc`, …). */
  callbackMetrics: Record<string, number>;
  /** Running sums of the interrupted epoch's train metrics (mid-epoch checkpoints only). */
  epochMetrics?: {
    /** Per metric (`train_loss`, …): the sum of its batch values, each weighted by the batch's size. */
    sums: Record<string, number>;
    /** Examples summed so far: the divisor of the epoch means. */
    count: number;
    /**
     * Every running reduction of the epoch (`this.log` values with their `reduce`, and the
     * returned step outputs), by key: the accumulator and its summed weight. Absent in checkpoints
     * written before `log` existed; `sums`/`count` then restore means.
     */
    reductions?: Record<string, {
      /** `mean`, `sum`, `max` or `min`. */
      reduce: 'mean' | 'sum' | 'max' | 'min';
      /** Σ value·weight (mean), Σ value (sum), or the extreme so far (null for NaN, as JSON writes it). */
      acc: number | null;
      /** Σ weight. */
      weight: number;
    }>;
  } | null;
  /** The (first) optimizer's state besides its slot tensors, which are stored as `optimizer.<slot>` tensors. */
  optimizer?: {
    /** Updates the optimizer has applied. */
    step: number;
    /** Each parameter group's name, hyper-parameters (current learning rate, …) and initial learning rate. */
    groups: unknown[];
  };
  /** The second and later optimizers (manual optimization) and their schedulers; slots are `optimizer@<i>.<slot>`. */
  extraOptimizers?: {
    /** Updates this optimizer has applied. */
    step: number;
    /** Its parameter groups, as in `optimizer.groups`. */
    groups: unknown[];
    /** Its scheduler's `stateDict()`, or `null` without one. */
    scheduler: Record<string, unknown> | null;
  }[];
  /** The learning-rate scheduler's state, when there is one. */
  scheduler?: Record<string, unknown> | null;
  /** The training loader's position and shuffling state, so a resume continues mid-epoch exactly. */
  loader?: unknown;
  /** The default generator's state. */
  rng?: unknown;
  /** `stateDict()` of every callback that has one, by its state key. */
  callbacks: Record<string, Record<string, unknown>>;
  /** Names of the tensors each callback stored (`stateTensors`), by state key; the tensors are `callback.<i>` in this order. */
  callbackTensors?: Record<string, string[]>;
  /** What was trained: the model's class and size and the module's hyper-parameters. */
  model: {
    /** The model's class name (`Module.typeName`). */
    class: string;
    /** Its number of parameter values, trainable or not (`Module.numParameters()`). */
    parameters: number;
    /** The training module's `hparams()` when saved (`kiln train --resume` checks its data flags against them). */
    hparams: Record<string, unknown>;
  };
  /** Versions that wrote it: the checkpoint format and tfjs-core. */
  versions: Record<string, string>;
  [extra: string]: unknown;
}

/** A checkpoint read back: model and optimizer tensors (owned by the caller) and the metadata. */
export interface Checkpoint {
  /** Model parameters and buffers by dotted name, ready for `Module.loadStateDict`. */
  modelState: Record<string, tf.Tensor>;
  /** Optimizer slots by `<paramIndex>.<slot>`, as `Optimizer.loadStateDict` expects. */
  optimizerSlots: Record<string, tf.Tensor>;
  /** Slots of the second and later optimizers (manual optimization), in order. */
  extraOptimizerSlots: Record<string, tf.Tensor>[];
  /** Callback tensors by state key and name (see `Callback.stateTensors`). */
  callbackTensors: Record<string, Record<string, tf.Tensor>>;
  /** Everything else: epoch, step, callback, scheduler and generator state, versions. */
  meta: CheckpointMeta;
}

/** Every tensor of a checkpoint read back, for disposal. */
export function checkpointTensors(ck: Checkpoint): tf.Tensor[] {
  return [
    ...Object.values(ck.modelState),
    ...Object.values(ck.optimizerSlots),
    ...ck.extraOptimizerSlots.flatMap((t) => Object.values(t)),
    ...Object.values(ck.callbackTensors).flatMap((t) => Object.values(t)),
  ];
}

/** Metadata key of the checksum: CRC-32C of the whole file with these 8 hex digits read as '0'. */
const CHECKSUM_KEY = 'kiln_crc32c';
const CHECKSUM_PLACEHOLDER = '00000000';

/** What {@link saveCheckpoint} writes: the tensors (still owned by the caller) and the metadata. */
export interface CheckpointParts {
  /** Model parameters and buffers by dotted name (`Module.stateDict()`), stored as `model.<name>`. */
  model: Record<string, tf.Tensor>;
  /** The first optimizer's slots by `<paramIndex>.<slot>` (from `Optimizer.stateDict()`), stored as `optimizer.<slot>`. */
  optimizerSlots?: Record<string, tf.Tensor>;
  /** Slots of the second and later optimizers, in order. */
  extraOptimizerSlots?: Record<string, tf.Tensor>[];
  /** Callback tensors by state key and name; their names are recorded in `meta.callbackTensors`. */
  callbackTensors?: Record<string, Record<string, tf.Tensor>>;
  /** The JSON metadata, stored as a string under the safetensors metadata key `kiln`. */
  meta: CheckpointMeta;
}

/**
 * Writes one safetensors file: `model.<name>` and `optimizer.<slot>` tensors plus the JSON
 * metadata under one key, and a CRC-32C over every byte of the file (header, metadata and tensor
 * data), checked by `readCheckpoint`. The file is written atomically by `storage.write` (on disk a
 * fsynced temporary file renamed over the old one, in IndexedDB one transaction), so a crash at any
 * point leaves either the previous checkpoint or the new one, never a torn file. `storage` defaults
 * to the host's: files in Node, IndexedDB in browsers.
 */
export async function saveCheckpoint(file: string, parts: CheckpointParts, storage: Storage = defaultStorage()): Promise<void> {
  await storage.write(file, await encodeCheckpoint(parts));
}

/** The bytes `saveCheckpoint` writes: the same everywhere (Node, browsers), so checkpoints move between hosts. */
export async function encodeCheckpoint(parts: CheckpointParts): Promise<Uint8Array> {
  const tensors: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(parts.model)) tensors[`model.${k}`] = await hostCopy(t);
  for (const [k, t] of Object.entries(parts.optimizerSlots ?? {})) tensors[`optimizer.${k}`] = await hostCopy(t);
  for (const [i, slots] of (parts.extraOptimizerSlots ?? []).entries()) for (const [k, t] of Object.entries(slots)) tensors[`optimizer@${i + 1}.${k}`] = await hostCopy(t);
  // Callback tensors are numbered, their (key, name) pairs kept in the metadata: state keys and
  // tensor names may both contain dots, so no single separator could split them back apart.
  const names: Record<string, string[]> = {};
  let i = 0;
  for (const [key, byName] of Object.entries(parts.callbackTensors ?? {})) {
    names[key] = Object.keys(byName);
    for (const t of Object.values(byName)) tensors[`callback.${i++}`] = await hostCopy(t);
  }
  const meta = i > 0 ? { ...parts.meta, callbackTensors: names } : parts.meta;
  const bytes = encodeSafetensors(tensors, { [META_KEY]: JSON.stringify(meta), [CHECKSUM_KEY]: CHECKSUM_PLACEHOLDER });
  const at = checksumOffset(bytes);
  const hex = checksumOf(bytes, at).toString(16).padStart(8, '0');
  bytes.set(new TextEncoder().encode(hex), at);
  return bytes;
}

/** Byte offset of the checksum's 8 hex digits inside the header, or -1 when the file has none. */
function checksumOffset(bytes: Uint8Array): number {
  if (bytes.length < 8) return -1;
  const hlen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const end = Math.min(bytes.length, 8 + hlen);
  // Inside the JSON-encoded metadata string every quote is escaped, so this key-value opening can
  // only be the real entry.
  const needle = new TextEncoder().encode(`"${CHECKSUM_KEY}":"`);
  outer: for (let i = 8; i + needle.length + 8 <= end; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i + needle.length;
  }
  return -1;
}

/** CRC-32C of `bytes` with the 8 digits at `at` read as '0', computed piecewise (no copy of the file). */
function checksumOf(bytes: Uint8Array, at: number): number {
  let c = crc32c(bytes.subarray(0, at));
  c = crc32c(new TextEncoder().encode(CHECKSUM_PLACEHOLDER), c);
  return crc32c(bytes.subarray(at + 8), c);
}

/** A tensor's values on the host, read asynchronously (WebGPU in Node has no synchronous readback). */
async function hostCopy(t: tf.Tensor): Promise<HostTensor> {
  const values = await t.data();
  const dtype = t.dtype === 'bool' ? 'bool' : (t.dtype as HostTensor['dtype']);
  const data = dtype === 'bool' ? Uint8Array.from(values as Uint8Array) : values;
  return { dtype, shape: [...t.shape], data: data as HostTensor['data'] };
}

/** A checkpoint whose bytes changed after it was written (disk, copy or transfer damage). */
export class CheckpointIntegrityError extends DataFormatError {
  constructor(file: string, problem: string, details: { expected?: string; found?: string } = {}) {
    super(file, problem, { ...details, hint: 'the file is damaged; resume from another checkpoint (last.ckpt, best.ckpt or an epoch file)' });
  }
}

/**
 * Reads a checkpoint file written by `saveCheckpoint` (or `ModelCheckpoint`) synchronously; damage
 * or a malformed file gives a typed error naming it. Node only: in a browser use
 * {@link readCheckpointFrom}.
 */
export function readCheckpoint(file: string): Checkpoint {
  return decodeCheckpoint(readFileSyncOnHost(file, 'checkpoint'), file);
}

/** Reads checkpoint `name` from `storage` (any host: files in Node, IndexedDB in browsers), checked as {@link readCheckpoint} does. */
export async function readCheckpointFrom(storage: Storage, name: string): Promise<Checkpoint> {
  return decodeCheckpoint(await storage.read(name, 'checkpoint'), name);
}

/** Parses checkpoint bytes: checksum first, then the safetensors structure, then the metadata against its schema. */
export function decodeCheckpoint(bytes: Uint8Array, file: string): Checkpoint {
  // The checksum is checked before anything in the file is believed.
  const at = checksumOffset(bytes);
  if (at >= 0) {
    const stored = new TextDecoder().decode(bytes.subarray(at, at + 8));
    const actual = checksumOf(bytes, at).toString(16).padStart(8, '0');
    if (actual !== stored) throw new CheckpointIntegrityError(file, 'checkpoint checksum mismatch: the file was modified or damaged after it was written', { expected: `CRC-32C ${stored}`, found: actual });
  }
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  if (!metadata[META_KEY]) throw new DataFormatError(file, `not a Kiln checkpoint: the safetensors metadata has no '${META_KEY}' entry`);
  let raw: unknown;
  try {
    raw = JSON.parse(metadata[META_KEY]);
  } catch (e) {
    throw new DataFormatError(file, `checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== CHECKPOINT_FORMAT && format !== 1) {
    throw new DataFormatError(file, 'unsupported checkpoint format version', { expected: `1 or ${CHECKPOINT_FORMAT}`, found: JSON.stringify(format) });
  }
  // Format 1 predates checksums; from format 2 on a checksum is required.
  if (format !== 1 && at < 0) throw new CheckpointIntegrityError(file, 'checkpoint has no checksum', { expected: `8 hex digits under '${CHECKSUM_KEY}' in the safetensors metadata` });
  const meta = validateCheckpointMeta(raw, file);
  const modelState: Record<string, tf.Tensor> = {};
  const optimizerSlots: Record<string, tf.Tensor> = {};
  const callbackTensors: Record<string, Record<string, tf.Tensor>> = {};
  const extraOptimizerSlots: Record<string, tf.Tensor>[] = (meta.extraOptimizers ?? []).map(() => ({}));
  const ck = { modelState, optimizerSlots, extraOptimizerSlots, callbackTensors, meta };
  try {
    for (const [k, h] of Object.entries(tensors)) {
      if (k.startsWith('model.')) modelState[k.slice(6)] = fromHost(h);
      else if (k.startsWith('optimizer.')) optimizerSlots[k.slice(10)] = fromHost(h);
      else if (k.startsWith('optimizer@')) {
        const m = /^optimizer@(\d+)\.(.+)$/.exec(k);
        const slots = m ? extraOptimizerSlots[Number(m[1]) - 1] : undefined;
        if (!slots) throw new DataFormatError(file, `checkpoint tensor '${k}' belongs to no optimizer the metadata lists`, { expected: `optimizer@1 … optimizer@${extraOptimizerSlots.length}` });
        slots[m![2]] = fromHost(h);
      }
    }
    let i = 0;
    for (const [key, names] of Object.entries(meta.callbackTensors ?? {})) {
      callbackTensors[key] = {};
      for (const name of names) {
        const h = tensors[`callback.${i++}`];
        if (!h) throw new DataFormatError(file, `checkpoint metadata lists callback tensor '${name}' of ${key}, which the file does not hold`, { expected: `a tensor named callback.${i - 1}` });
        callbackTensors[key][name] = fromHost(h);
      }
    }
  } catch (e) {
    tf.dispose(checkpointTensors(ck));
    throw e;
  }
  return ck;
}

/** Loads a checkpoint's weights into a module (strict by default); returns the metadata. */
export function loadCheckpoint(file: string, model: { loadStateDict(sd: Record<string, tf.Tensor>, o?: { strict?: boolean }): unknown }, options: { strict?: boolean } = {}): CheckpointMeta {
  const ck = readCheckpoint(file);
  try {
    model.loadStateDict(ck.modelState, options);
  } finally {
    tf.dispose(checkpointTensors(ck));
  }
  return ck.meta;
}
