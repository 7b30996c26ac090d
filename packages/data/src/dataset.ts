import { ConfigError, KilnError } from '@kiln/core';
import type { ExampleSchema, ExampleValue, TensorSpec } from './collate.js';

/** An indexable collection of examples. */
export interface Dataset<T> {
  /** Number of examples. */
  readonly length: number;
  /** The example at `index`, in [0, length). */
  get(index: number): T;
}

/**
 * A dataset whose examples take time to produce (decoded in a worker pool, read from disk or the
 * network). `getMany` fetches a whole batch at once so the work can run in parallel and overlap
 * the training step; the DataLoader uses it when iterated with `for await`, keeping several
 * batches in flight. `get` may be unsupported (throw) when an example cannot be made synchronously.
 */
export interface AsyncDataset<T> extends Dataset<T> {
  /** The examples at `indices`, in that order. */
  getMany(indices: ArrayLike<number>): Promise<T[]>;
}

/** True when `ds` fetches batches asynchronously (has `getMany`). */
export function isAsyncDataset<T>(ds: Dataset<T>): ds is AsyncDataset<T> {
  return typeof (ds as Partial<AsyncDataset<T>>).getMany === 'function';
}

/**
 * An `AsyncDataset` that also assembles a batch itself, as `ArrayDataset.gather` does in memory: the
 * batch's inputs and targets each in one buffer, ready to become one tensor. A dataset whose
 * examples are made on other threads (an image folder's decoding workers) has them written there,
 * so the thread that trains receives one buffer per batch instead of an object per example. The
 * `DataLoader` uses it when iterated with `for await` and its schema is the dataset's own.
 */
export interface GatheringDataset<T> extends AsyncDataset<T> {
  /** Shape and dtype of one example's `x` and `y`: the rows `gatherMany` fills. */
  readonly schema: {
    /** One example's input. */
    x: TensorSpec;
    /** One example's target. */
    y: TensorSpec;
  };
  /**
   * The examples at `indices`, stacked: exactly what collating `getMany(indices)` to `schema` gives,
   * values already valid for it (class labels within the dataset's classes).
   */
  gatherMany(
    indices: ArrayLike<number>,
    options?: GatherOptions,
  ): Promise<{
    /** [indices.length, ...schema.x.shape], row-major, of `schema.x.dtype`. */
    x: Float32Array | Int32Array;
    /** [indices.length, ...schema.y.shape], row-major, of `schema.y.dtype`. */
    y: Float32Array | Int32Array;
  }>;
}

/** What a `DataLoader` tells `GatheringDataset.gatherMany` about a batch it asked for ahead of time. */
export interface GatherOptions {
  /**
   * Settles when the caller starts waiting for this batch (a loader reads batches ahead; this is the
   * moment the training thread has nothing else to do). A dataset whose batch is not ready by then
   * may do the remaining work on the calling thread instead of leaving it idle; never settles for a
   * batch that is dropped unread.
   */
  wanted?: Promise<void>;
}

/** True when `ds` gathers whole batches asynchronously (has `gatherMany` and `getMany`). */
export function isGatheringDataset<T>(ds: Dataset<T>): ds is GatheringDataset<T> {
  return isAsyncDataset(ds) && typeof (ds as Partial<GatheringDataset<T>>).gatherMany === 'function';
}

/**
 * One example: an input `x` and a target `y`, each a tensor-like value (number, array, typed array,
 * `{ data, shape, dtype }`) or a record of them (several inputs, masks, boxes). The defaults are a
 * labelled image or feature vector: `x` in row-major order of the loader's example shape and an
 * integer class label `y`.
 */
export interface Example<X extends ExampleValue = Float32Array, Y extends ExampleValue = number> {
  /** The input: by default an example's values in row-major order of the loader's example shape. */
  x: X;
  /** The target: by default an integer class label, in [0, number of classes). */
  y: Y;
}

/** An example of any structure. */
export type AnyExample = Example<ExampleValue, ExampleValue>;

/** An `ArrayDataset` with either kind of target buffer. */
export type AnyArrayDataset = ArrayDataset<Int32Array | Float32Array>;

/** What `ArrayDataset.get` returns for its target buffer: a class label, or a float scalar or row. */
export type ArrayTarget<Y extends Int32Array | Float32Array> = Y extends Float32Array ? number | Float32Array : number;

/**
 * Examples held in contiguous arrays: `x` as [N, ...shape] float32 and targets `y` as [N,
 * ...targetShape]: int32 class labels (an Int32Array, `targetShape` []), or float32 targets of any
 * shape (a Float32Array: regression values, multi-output rows, multi-hot labels). Batches are
 * assembled by copying rows, with no per-example objects on the hot path.
 */
export class ArrayDataset<Y extends Int32Array | Float32Array = Int32Array> implements Dataset<Example<Float32Array, ArrayTarget<Y>>> {
  /** Number of examples. */
  readonly length: number;
  /** Values per example: the product of `shape`. */
  readonly exampleSize: number;
  /** Values per target (1 for class labels and scalar targets). */
  readonly targetSize: number;

  constructor(
    /** All examples' values, [N, ...shape] row-major. */
    readonly x: Float32Array,
    /** All targets: an Int32Array of N class labels, or a Float32Array of [N, ...targetShape] values row-major. */
    readonly y: Y,
    /** Shape of one example, e.g. [28, 28, 1] (NHWC without N). */
    readonly shape: number[],
    /** Class names by label, when known. */
    readonly classes?: string[],
    /** Shape of one target: [] (default) for a label or scalar, [K] for K outputs or a K-class multi-hot row. */
    readonly targetShape: number[] = [],
  ) {
    this.exampleSize = shape.reduce((a, b) => a * b, 1);
    this.targetSize = targetShape.reduce((a, b) => a * b, 1);
    if (!(y instanceof Int32Array || y instanceof Float32Array)) throw new ConfigError('ArrayDataset.y', 'an Int32Array of class labels or a Float32Array of targets', Object.prototype.toString.call(y));
    if (y instanceof Int32Array && targetShape.length > 0) {
      throw new ConfigError('ArrayDataset.targetShape', '[] for Int32Array class labels (multi-output and multi-hot targets are a Float32Array)', targetShape);
    }
    if (!(this.targetSize > 0) || !targetShape.every((d) => Number.isInteger(d) && d > 0)) throw new ConfigError('ArrayDataset.targetShape', 'positive integers', targetShape);
    this.length = y.length / this.targetSize;
    if (!Number.isInteger(this.length) || x.length !== this.length * this.exampleSize) {
      throw new KilnError('E_DATASET', 'ArrayDataset: x and y disagree on the number of examples', {
        expected: `${y.length} / ${this.targetSize} target values = ${this.length} examples × ${this.exampleSize} = ${this.length * this.exampleSize} values in x`,
        found: `${x.length}`,
      });
    }
    if (y instanceof Int32Array) {
      const bound = classes ? classes.length : Infinity;
      for (let i = 0; i < y.length; i++) {
        if (y[i] < 0 || y[i] >= bound) {
          throw new KilnError('E_DATASET', `ArrayDataset: example ${i} has class label ${y[i]}`, { expected: classes ? `a label in [0, ${classes.length}) (${classes.length} classes)` : 'a label >= 0', found: String(y[i]) });
        }
      }
    }
  }

  get(index: number): Example<Float32Array, ArrayTarget<Y>> {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new ConfigError('ArrayDataset.get(index)', `an integer in [0, ${this.length})`, index);
    }
    const s = this.exampleSize;
    const t = this.targetSize;
    const y = this.targetShape.length === 0 ? this.y[index] : (this.y as Float32Array).subarray(index * t, (index + 1) * t);
    return { x: this.x.subarray(index * s, (index + 1) * s), y: y as ArrayTarget<Y> };
  }

  /** Copies the examples at `indices` into one batch buffer. */
  gather(indices: ArrayLike<number>): {
    /** The examples' values, [indices.length, ...shape] row-major. */
    x: Float32Array;
    /** Their targets, [indices.length, ...targetShape], of the same kind as the dataset's `y`. */
    y: Y;
  } {
    const s = this.exampleSize;
    const t = this.targetSize;
    const x = new Float32Array(indices.length * s);
    const y = (this.y instanceof Int32Array ? new Int32Array(indices.length * t) : new Float32Array(indices.length * t)) as Y;
    for (let i = 0; i < indices.length; i++) {
      const j = indices[i];
      if (!(j >= 0 && j < this.length)) throw new ConfigError('ArrayDataset.gather(indices)', `indices in [0, ${this.length})`, j);
      x.set(this.x.subarray(j * s, (j + 1) * s), i * s);
      if (t === 1) y[i] = this.y[j];
      else y.set(this.y.subarray(j * t, (j + 1) * t), i * t);
    }
    return { x, y };
  }

  /** A new dataset of the examples at `indices` (copied, so the parent may be dropped). */
  subset(indices: ArrayLike<number>): ArrayDataset<Y> {
    const { x, y } = this.gather(indices);
    return new ArrayDataset(x, y, this.shape, this.classes, this.targetShape);
  }

  /** The first `n` examples. */
  take(n: number): ArrayDataset<Y> {
    const m = Math.min(n, this.length);
    return new ArrayDataset(this.x.subarray(0, m * this.exampleSize), this.y.subarray(0, m * this.targetSize) as Y, this.shape, this.classes, this.targetShape);
  }

  /** The schema the loader collates this dataset to. */
  get schema(): ExampleSchema {
    return { x: { shape: this.shape, dtype: 'float32' }, y: { shape: this.targetShape, dtype: this.y instanceof Int32Array ? 'int32' : 'float32' } };
  }
}
