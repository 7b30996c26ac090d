import { ConfigError, KilnError } from '@kiln/core';
import type { ExampleSchema, ExampleValue, TensorSpec } from './collate.js';
import { byteLevels, bytesToFloats } from './byte-levels.js';

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
 * Input values stored one byte each: value `i` is `bytes[i] / scale`, rounded to float32 — what
 * dividing the bytes into a Float32Array gives, computed per batch instead of for the whole
 * dataset up front. Images read from 8-bit files (IDX, CIFAR) are held like this at a quarter of
 * the memory of float32, and batches come out with exactly the values the float32 copy would hold.
 */
export interface ScaledBytes {
  /** One byte per value, [N, ...shape] row-major. */
  readonly bytes: Uint8Array;
  /** Each byte is divided by this (255: pixels in [0, 1]); a positive finite number. */
  readonly scale: number;
}

/** True when an `ArrayDataset`'s stored inputs are bytes (see {@link ScaledBytes}). */
export function isScaledBytes(x: Float32Array | ScaledBytes): x is ScaledBytes {
  return !(x instanceof Float32Array);
}

/**
 * Examples held in contiguous arrays: inputs [N, ...shape] as float32 values, or as bytes and a
 * scale ({@link ScaledBytes}, converted to float32 row by row when a batch is gathered), and
 * targets `y` as [N, ...targetShape]: int32 class labels (an Int32Array, `targetShape` []), or
 * float32 targets of any shape (a Float32Array: regression values, multi-output rows, multi-hot
 * labels). Batches are assembled by copying rows, with no per-example objects on the hot path.
 */
export class ArrayDataset<Y extends Int32Array | Float32Array = Int32Array> implements Dataset<Example<Float32Array, ArrayTarget<Y>>> {
  /** Number of examples. */
  readonly length: number;
  /** Values per example: the product of `shape`. */
  readonly exampleSize: number;
  /** Values per target (1 for class labels and scalar targets). */
  readonly targetSize: number;
  /** For byte inputs, the float32 value of each byte; undefined for float32 inputs. */
  private readonly levels?: Float32Array;
  /** Byte inputs converted to float32 once, when `x` was asked for. */
  private floats?: Float32Array;

  constructor(
    /** All examples' values, [N, ...shape] row-major: float32, or bytes with the scale they are divided by. */
    readonly stored: Float32Array | ScaledBytes,
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
    if (isScaledBytes(stored)) {
      if (!(stored.bytes instanceof Uint8Array)) throw new ConfigError('ArrayDataset.stored.bytes', 'a Uint8Array', Object.prototype.toString.call(stored.bytes));
      if (!(stored.scale > 0 && Number.isFinite(stored.scale))) throw new ConfigError('ArrayDataset.stored.scale', 'a positive finite number', stored.scale);
      this.levels = byteLevels(stored.scale);
    } else if (!(stored instanceof Float32Array)) {
      throw new ConfigError('ArrayDataset.stored', 'a Float32Array, or { bytes: Uint8Array, scale }', Object.prototype.toString.call(stored));
    }
    if (y instanceof Int32Array && targetShape.length > 0) {
      throw new ConfigError('ArrayDataset.targetShape', '[] for Int32Array class labels (multi-output and multi-hot targets are a Float32Array)', targetShape);
    }
    if (!(this.targetSize > 0) || !targetShape.every((d) => Number.isInteger(d) && d > 0)) throw new ConfigError('ArrayDataset.targetShape', 'positive integers', targetShape);
    this.length = y.length / this.targetSize;
    const values = isScaledBytes(stored) ? stored.bytes.length : stored.length;
    if (!Number.isInteger(this.length) || values !== this.length * this.exampleSize) {
      throw new KilnError('E_DATASET', 'ArrayDataset: x and y disagree on the number of examples', {
        expected: `${y.length} / ${this.targetSize} target values = ${this.length} examples × ${this.exampleSize} = ${this.length * this.exampleSize} values in x`,
        found: `${values}`,
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

  /**
   * All examples' values as float32, [N, ...shape] row-major. For byte inputs this converts the
   * whole dataset once (four times the memory of the bytes) and keeps the result; `get`, `gather`,
   * `subset` and `channelStats` read the bytes directly and never need it.
   */
  get x(): Float32Array {
    const s = this.stored;
    if (!isScaledBytes(s)) return s;
    this.floats ??= this.toFloats(s.bytes, Int32Array.from({ length: this.length }, (_, i) => i));
    return this.floats;
  }

  /** The byte inputs of the examples at `rows` as float32, [rows.length, ...shape]. */
  private toFloats(bytes: Uint8Array, rows: ArrayLike<number>): Float32Array {
    const out = new Float32Array(rows.length * this.exampleSize);
    bytesToFloats(bytes, rows, this.exampleSize, this.levels as Float32Array, out);
    return out;
  }

  /** The example at `index`; its `x` is a view of the dataset's float32 values, or a new array for byte inputs. */
  get(index: number): Example<Float32Array, ArrayTarget<Y>> {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new ConfigError('ArrayDataset.get(index)', `an integer in [0, ${this.length})`, index);
    }
    const s = this.exampleSize;
    const t = this.targetSize;
    const y = this.targetShape.length === 0 ? this.y[index] : (this.y as Float32Array).subarray(index * t, (index + 1) * t);
    const stored = this.stored;
    const x = isScaledBytes(stored) ? this.toFloats(stored.bytes, [index]) : stored.subarray(index * s, (index + 1) * s);
    return { x, y: y as ArrayTarget<Y> };
  }

  /**
   * Copies the rows at `indices` of a buffer of `size` values per row into a new buffer `out`.
   * Runs of consecutive indices (a split's sorted indices are mostly runs) are copied as one block.
   */
  private static gatherRows<T extends Uint8Array | Int32Array | Float32Array>(from: T, out: T, size: number, indices: ArrayLike<number>, length: number): T {
    for (let i = 0; i < indices.length; ) {
      const j = indices[i];
      if (!(j >= 0 && j < length)) throw new ConfigError('ArrayDataset.gather(indices)', `indices in [0, ${length})`, j);
      let run = 1;
      while (i + run < indices.length && indices[i + run] === j + run) run++;
      if (size === 1 && run === 1) out[i] = from[j];
      else out.set(from.subarray(j * size, (j + run) * size), i * size);
      i += run;
    }
    return out;
  }

  /** The targets at `indices`, in a new buffer of the same kind as `y`. */
  private gatherTargets(indices: ArrayLike<number>): Y {
    const n = indices.length * this.targetSize;
    const out = (this.y instanceof Int32Array ? new Int32Array(n) : new Float32Array(n)) as Y;
    return ArrayDataset.gatherRows(this.y, out, this.targetSize, indices, this.length);
  }

  /** Copies the examples at `indices` into one batch buffer (byte inputs converted to float32 on the way). */
  gather(indices: ArrayLike<number>): {
    /** The examples' values, [indices.length, ...shape] row-major. */
    x: Float32Array;
    /** Their targets, [indices.length, ...targetShape], of the same kind as the dataset's `y`. */
    y: Y;
  } {
    const s = this.exampleSize;
    const y = this.gatherTargets(indices);
    const stored = this.stored;
    if (!isScaledBytes(stored)) return { x: ArrayDataset.gatherRows(stored, new Float32Array(indices.length * s), s, indices, this.length), y };
    // gatherTargets has checked every index.
    return { x: this.toFloats(stored.bytes, indices), y };
  }

  /** A new dataset of the examples at `indices`, stored as this one is (copied, so the parent may be dropped). */
  subset(indices: ArrayLike<number>): ArrayDataset<Y> {
    const s = this.exampleSize;
    const y = this.gatherTargets(indices);
    const stored = this.stored;
    const x = isScaledBytes(stored)
      ? { bytes: ArrayDataset.gatherRows(stored.bytes, new Uint8Array(indices.length * s), s, indices, this.length), scale: stored.scale }
      : ArrayDataset.gatherRows(stored, new Float32Array(indices.length * s), s, indices, this.length);
    return new ArrayDataset(x, y, this.shape, this.classes, this.targetShape);
  }

  /** The first `n` examples (a view: no values are copied). */
  take(n: number): ArrayDataset<Y> {
    const m = Math.min(n, this.length);
    const stored = this.stored;
    const x = isScaledBytes(stored) ? { bytes: stored.bytes.subarray(0, m * this.exampleSize), scale: stored.scale } : stored.subarray(0, m * this.exampleSize);
    return new ArrayDataset(x, this.y.subarray(0, m * this.targetSize) as Y, this.shape, this.classes, this.targetShape);
  }

  /** The schema the loader collates this dataset to. */
  get schema(): ExampleSchema {
    return { x: { shape: this.shape, dtype: 'float32' }, y: { shape: this.targetShape, dtype: this.y instanceof Int32Array ? 'int32' : 'float32' } };
  }
}
