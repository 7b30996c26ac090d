import { ConfigError, KilnError } from '@kiln/core';

/** An indexable collection of examples. */
export interface Dataset<T> {
  /** Number of examples. */
  readonly length: number;
  /** The example at `index`, in [0, length). */
  get(index: number): T;
}

/** A labelled image (or any fixed-shape array) example. */
export interface Example {
  /** Values in row-major order of `shape`. */
  x: Float32Array;
  /** Integer class label. */
  y: number;
}

/**
 * Examples held in two contiguous arrays: `x` as [N, ...shape] float32 and integer labels `y`.
 * Batches are assembled by copying rows, with no per-example objects on the hot path.
 */
export class ArrayDataset implements Dataset<Example> {
  /** Number of examples. */
  readonly length: number;
  /** Values per example: the product of `shape`. */
  readonly exampleSize: number;

  constructor(
    /** All examples' values, [N, ...shape] row-major. */
    readonly x: Float32Array,
    /** Integer labels, one per example. */
    readonly y: Int32Array,
    /** Shape of one example, e.g. [28, 28, 1] (NHWC without N). */
    readonly shape: number[],
    /** Class names by label, when known. */
    readonly classes?: string[],
  ) {
    this.exampleSize = shape.reduce((a, b) => a * b, 1);
    this.length = y.length;
    if (x.length !== this.length * this.exampleSize) {
      throw new KilnError('E_DATASET', 'ArrayDataset: x and y disagree on the number of examples', {
        expected: `${this.length} × ${this.exampleSize} = ${this.length * this.exampleSize} values in x`,
        found: `${x.length}`,
      });
    }
  }

  get(index: number): Example {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new ConfigError('ArrayDataset.get(index)', `an integer in [0, ${this.length})`, index);
    }
    const s = this.exampleSize;
    return { x: this.x.subarray(index * s, (index + 1) * s), y: this.y[index] };
  }

  /** Copies the examples at `indices` into one batch buffer. */
  gather(indices: ArrayLike<number>): {
    /** The examples' values, [indices.length, ...shape]. */
    x: Float32Array;
    /** Their labels. */
    y: Int32Array;
  } {
    const s = this.exampleSize;
    const x = new Float32Array(indices.length * s);
    const y = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const j = indices[i];
      if (!(j >= 0 && j < this.length)) throw new ConfigError('ArrayDataset.gather(indices)', `indices in [0, ${this.length})`, j);
      x.set(this.x.subarray(j * s, (j + 1) * s), i * s);
      y[i] = this.y[j];
    }
    return { x, y };
  }

  /** A new dataset of the examples at `indices` (copied, so the parent may be dropped). */
  subset(indices: ArrayLike<number>): ArrayDataset {
    const { x, y } = this.gather(indices);
    return new ArrayDataset(x, y, this.shape, this.classes);
  }

  /** The first `n` examples. */
  take(n: number): ArrayDataset {
    const m = Math.min(n, this.length);
    return new ArrayDataset(this.x.subarray(0, m * this.exampleSize), this.y.subarray(0, m), this.shape, this.classes);
  }
}
