import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { tf, DataFormatError, NotFoundError, decodeSafetensors, encodeSafetensors, fromHost, type HostTensor } from '@kiln/core';

/** Version of the checkpoint layout below; bumped when a reader would misread an older file. */
export const CHECKPOINT_FORMAT = 1;
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
    /** Sum of each metric over the batches trained. */
    sums: Record<string, number>;
    /** Batches summed. */
    count: number;
  } | null;
  /** The optimizer's step count and groups (its slot tensors are stored beside the model's). */
  optimizer?: {
    /** `step()` calls so far. */
    step: number;
    /** Each group's name, hyperparameters and starting rate. */
    groups: unknown[];
  };
  /** The learning-rate scheduler's state, when there is one. */
  scheduler?: Record<string, unknown> | null;
  /** The training loader's position and shuffling state, so a resume continues mid-epoch exactly. */
  loader?: unknown;
  /** The default generator's state. */
  rng?: unknown;
  /** `stateDict()` of every callback that has one, by its state key. */
  callbacks: Record<string, Record<string, unknown>>;
  /** What was trained: the module's class, its parameter count and hyperparameters. */
  model: {
    /** Class name of the model. */
    class: string;
    /** Number of parameter values. */
    parameters: number;
    /** The module's hyperparameters (zoo model name, classes, input scaling, …). */
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
  /** Everything else: epoch, step, callback, scheduler and generator state, versions. */
  meta: CheckpointMeta;
}

/**
 * Writes one safetensors file: `model.<name>` and `optimizer.<slot>` tensors plus the JSON
 * metadata under one key. The bytes go to a temporary file in the same directory, are fsynced, and
 * the file is renamed over `file` — rename is atomic on POSIX filesystems, so a crash at any point
 * leaves either the previous checkpoint or the new one, never a torn file.
 */
export async function saveCheckpoint(file: string, parts: { model: Record<string, tf.Tensor>; optimizerSlots?: Record<string, tf.Tensor>; meta: CheckpointMeta }): Promise<void> {
  const tensors: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(parts.model)) tensors[`model.${k}`] = await hostCopy(t);
  for (const [k, t] of Object.entries(parts.optimizerSlots ?? {})) tensors[`optimizer.${k}`] = await hostCopy(t);
  const bytes = encodeSafetensors(tensors, { [META_KEY]: JSON.stringify(parts.meta) });
  writeFileAtomic(file, bytes);
}

/** A tensor's values on the host, read asynchronously (WebGPU in Node has no synchronous readback). */
async function hostCopy(t: tf.Tensor): Promise<HostTensor> {
  const values = await t.data();
  const dtype = t.dtype === 'bool' ? 'bool' : (t.dtype as HostTensor['dtype']);
  const data = dtype === 'bool' ? Uint8Array.from(values as Uint8Array) : values;
  return { dtype, shape: [...t.shape], data: data as HostTensor['data'] };
}

/** Temporary name in the target's directory, fsync, rename. */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Reads a checkpoint written by `saveCheckpoint` (or `ModelCheckpoint`). */
export function readCheckpoint(file: string): Checkpoint {
  let bytes: Uint8Array;
  try {
    // A plain Uint8Array copy: a Node Buffer's slice() shares memory, which decodeSafetensors' aligned copy relies on not doing.
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new NotFoundError(`checkpoint ${file}`, [file], (e as Error).message);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  if (!metadata[META_KEY]) throw new DataFormatError(file, `not a Kiln checkpoint: the safetensors metadata has no '${META_KEY}' entry`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata[META_KEY]);
  } catch (e) {
    throw new DataFormatError(file, `checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new DataFormatError(file, 'unsupported checkpoint format version', { expected: String(CHECKPOINT_FORMAT), found: String(meta.format) });
  }
  const modelState: Record<string, tf.Tensor> = {};
  const optimizerSlots: Record<string, tf.Tensor> = {};
  for (const [k, h] of Object.entries(tensors)) {
    if (k.startsWith('model.')) modelState[k.slice(6)] = fromHost(h);
    else if (k.startsWith('optimizer.')) optimizerSlots[k.slice(10)] = fromHost(h);
  }
  return { modelState, optimizerSlots, meta };
}

/** Loads a checkpoint's weights into a module (strict by default); returns the metadata. */
export function loadCheckpoint(file: string, model: { loadStateDict(sd: Record<string, tf.Tensor>, o?: { strict?: boolean }): unknown }, options: { strict?: boolean } = {}): CheckpointMeta {
  const ck = readCheckpoint(file);
  try {
    model.loadStateDict(ck.modelState, options);
  } finally {
    tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
  }
  return ck.meta;
}
