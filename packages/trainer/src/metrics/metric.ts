import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';

/**
 * A stateful metric: `update` folds one batch into the state, `compute` reads the result, `reset`
 * empties it, and `merge` folds in another instance's state so that partial states from several
 * workers (or the two halves of a data set) combine into exactly the state of the whole.
 *
 * Counts and sums stay on the device between updates (an update never reads a tensor back to the
 * host); `compute` and `stateDict` read once. `stateDict` is plain JSON, so a worker can send its
 * partial state and a coordinator can `loadStateDict` it into a fresh instance and `merge` that.
 * A metric owns tensors: call `dispose` (or `reset`) when done with it.
 */
export interface Metric<State, Result = number> {
  /** Folds in one batch. `preds` and `targets` are not disposed; the caller owns them. */
  update(preds: tf.Tensor, targets: tf.Tensor): void;
  /** The metric over everything seen since the last reset (reads the device once). */
  compute(): Result;
  /** Forgets everything seen, so the instance can be reused. */
  reset(): void;
  /** Folds in another instance's state (same kind and configuration); `other` is left as it was. */
  merge(other: this): void;
  /** The state as plain JSON. */
  stateDict(): State;
  /** Replaces the state by one from `stateDict` (of an instance with the same configuration). */
  loadStateDict(state: State): void;
  /** Frees the device memory the state holds. */
  dispose(): void;
}

/**
 * A sum kept on the device: `add` replaces the held tensor by the sum without reading it, so
 * accumulating over batches costs no host round trip. Shape and dtype are fixed at construction.
 */
export class DeviceSum {
  private value: tf.Tensor;

  constructor(readonly shape: number[], readonly dtype: 'float32' | 'int32' = 'float32') {
    this.value = tf.keep(tf.zeros(shape, dtype));
  }

  /** Adds `delta` (same shape; cast to this sum's dtype). Does not dispose `delta`. */
  add(delta: tf.Tensor): void {
    const next = tf.tidy(() => tf.add(this.value, delta.dtype === this.dtype ? delta : tf.cast(delta, this.dtype)));
    this.value.dispose();
    this.value = tf.keep(next);
  }

  /** Replaces the sum by `f(current)`, for merges that are not plain sums. */
  replace(f: (current: tf.Tensor) => tf.Tensor): void {
    const next = tf.tidy(() => f(this.value));
    this.value.dispose();
    this.value = tf.keep(next);
  }

  get tensor(): tf.Tensor {
    return this.value;
  }

  read(): number[] {
    return Array.from(this.value.dataSync());
  }

  load(values: readonly number[], where: string): void {
    const size = this.shape.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new ConfigError(where, `${size} numbers (shape [${this.shape.join(', ')}])`, `${values.length} numbers`);
    this.value.dispose();
    this.value = tf.keep(tf.tensor(values as number[], this.shape, this.dtype));
  }

  zero(): void {
    this.value.dispose();
    this.value = tf.keep(tf.zeros(this.shape, this.dtype));
  }

  dispose(): void {
    this.value.dispose();
  }
}

/**
 * Integer class labels [N] from targets given as labels [N] (any numeric dtype) or as one-hot /
 * soft targets [N, K] (their arg-max, as MixUp or label smoothing produce).
 */
export function targetLabels(targets: tf.Tensor, where: string): tf.Tensor1D {
  if (targets.rank === 1) return tf.cast(targets, 'int32') as tf.Tensor1D;
  if (targets.rank === 2) return tf.argMax(targets, -1) as tf.Tensor1D;
  throw new ShapeMismatchError(where, 'targets [N] (class labels) or [N, K] (one-hot)', targets.shape);
}

/** Predicted labels [N] from scores [N, K] (the arg-max, first maximum on ties) or labels [N]. */
export function predictedLabels(preds: tf.Tensor, where: string): tf.Tensor1D {
  if (preds.rank === 1) return tf.cast(preds, 'int32') as tf.Tensor1D;
  if (preds.rank === 2) return tf.argMax(preds, -1) as tf.Tensor1D;
  throw new ShapeMismatchError(where, 'predictions [N, K] (scores) or [N] (labels)', preds.shape);
}

/** Throws unless preds and targets describe the same number of examples. */
export function checkBatch(preds: tf.Tensor, targets: tf.Tensor, where: string): void {
  if (preds.rank === 0 || targets.rank === 0 || preds.shape[0] !== targets.shape[0]) {
    throw new ShapeMismatchError(where, `predictions and targets with the same number of examples (first dimension)`, `predictions [${preds.shape.join(', ')}], targets [${targets.shape.join(', ')}]`);
  }
}

/** Throws unless two metrics have the same configuration (compared as JSON). */
export function checkSameConfig(where: string, mine: unknown, theirs: unknown): void {
  const a = JSON.stringify(mine);
  const b = JSON.stringify(theirs);
  if (a !== b) throw new ConfigError(`${where}.merge`, `a metric with the same configuration ${a}`, b);
}

/** `num / den`, or `zeroDivision` where `den` is 0 (sklearn's `zero_division`). */
export function safeDivide(num: number, den: number, zeroDivision: number): number {
  return den === 0 ? zeroDivision : num / den;
}
