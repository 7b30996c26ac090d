import { tf, Rng, ConfigError, type RngState } from '@kiln/core';
import type { ArrayDataset } from './dataset.js';

export interface Batch {
  /** [B, ...exampleShape] float32 */
  x: tf.Tensor;
  /** [B] int32 labels */
  y: tf.Tensor;
  /** Dataset indices of the examples, in batch order. */
  indices: Int32Array;
}

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  /** Drop the last incomplete batch. */
  dropLast?: boolean;
  /** Seed of the loader's own generator (shuffling). Ignored when `rng` is given. */
  seed?: number;
  rng?: Rng;
}

/** Where a loader is in its stream: enough to continue mid-epoch exactly. */
export interface LoaderState {
  epoch: number;
  /** Batches already yielded in the current epoch. */
  position: number;
  /** Generator state at the start of the current epoch (the permutation is redrawn from it). */
  rng: RngState;
}

/**
 * Batches an `ArrayDataset`, reshuffling each epoch from a seeded generator. The next batch is
 * assembled while the caller works on the current one, and the loader's position can be saved and
 * restored, so a resumed run sees exactly the batches an uninterrupted one would.
 */
export class DataLoader implements Iterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly rng: Rng;
  private epoch = 0;
  private position = 0;
  private epochStart: RngState;
  private resumeAt: number | null = null;

  constructor(readonly dataset: ArrayDataset, options: DataLoaderOptions = {}) {
    this.batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new ConfigError('DataLoader.batchSize', 'a positive integer', options.batchSize);
    this.shuffle = options.shuffle ?? false;
    this.dropLast = options.dropLast ?? false;
    this.rng = options.rng ?? new Rng(options.seed ?? 0);
    this.epochStart = this.rng.getState();
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  private order(): Int32Array {
    if (this.shuffle) return this.rng.permutation(this.dataset.length);
    const o = new Int32Array(this.dataset.length);
    for (let i = 0; i < o.length; i++) o[i] = i;
    return o;
  }

  private makeBatch(order: Int32Array, b: number): Batch {
    const indices = order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, order.length));
    const { x, y } = this.dataset.gather(indices);
    return {
      x: tf.tensor(x, [indices.length, ...this.dataset.shape], 'float32'),
      y: tf.tensor1d(y, 'int32'),
      indices: Int32Array.from(indices),
    };
  }

  /** One epoch of batches. Each batch's tensors belong to the caller, who disposes them. */
  *[Symbol.iterator](): Iterator<Batch> {
    const resuming = this.resumeAt !== null;
    if (!resuming) this.epochStart = this.rng.getState();
    const order = this.order();
    const start = this.resumeAt ?? 0;
    this.resumeAt = null;
    this.position = start;
    const total = this.length;
    try {
      for (let b = start; b < total; b++) {
        const batch = this.makeBatch(order, b);
        this.position = b + 1;
        yield batch;
      }
      this.epoch++;
      this.position = 0;
      this.epochStart = this.rng.getState();
    } finally {
      // An epoch abandoned early (limitTrainBatches, early stop) leaves the position where it was.
    }
  }

  stateDict(): LoaderState {
    return { epoch: this.epoch, position: this.position, rng: this.epochStart };
  }

  /** The next iteration replays the saved epoch's permutation and starts at the saved batch. */
  loadStateDict(s: LoaderState): void {
    this.epoch = s.epoch;
    this.rng.setState(s.rng);
    this.epochStart = s.rng;
    this.position = s.position;
    this.resumeAt = s.position > 0 && s.position < this.length ? s.position : null;
  }
}
