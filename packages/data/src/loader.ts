import { tf, Rng, ConfigError, type RngState } from '@kiln/core';
import { ArrayDataset, type Dataset, type Example } from './dataset.js';
import { RandomSampler, SequentialSampler, type Sampler } from './sampler.js';
import type { Augmentation, BatchAugmentation } from './augment/augmentation.js';

/** One batch as the loader yields it. */
export interface Batch {
  /** [B, ...exampleShape] float32 */
  x: tf.Tensor;
  /** [B] int32 labels, or [B, K] float32 targets after a label-mixing transform. */
  y: tf.Tensor;
  /** Dataset indices of the examples, in batch order. */
  indices: Int32Array;
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  /** Examples per batch (default 32). */
  batchSize?: number;
  /** Visit the examples in a new random order every epoch (default false). Ignored when `sampler` is given. */
  shuffle?: boolean;
  /** Drop the last incomplete batch. */
  dropLast?: boolean;
  /** Seed of the loader's own generator (order, augmentation). Ignored when `rng` is given. */
  seed?: number;
  /** The loader's generator; shared with the caller, who may save its state. */
  rng?: Rng;
  /** Which indices an epoch visits (e.g. `classWeightedSampler(labels)`); default sequential or random by `shuffle`. */
  sampler?: Sampler;
  /** Shape of one example, for datasets other than `ArrayDataset` (which know their own). */
  exampleShape?: number[];
  /** Image augmentation applied to each batch's `x` on the active backend. */
  transform?: Augmentation;
  /** Augmentation of images and labels together (MixUp, CutMix), applied after `transform`. */
  batchTransform?: BatchAugmentation;
  /** Batches prepared ahead during async iteration (default 2). */
  prefetch?: number;
}

/** Where a loader is in its stream: enough to continue mid-epoch exactly. */
export interface LoaderState {
  /** Epochs completed so far. */
  epoch: number;
  /** Batches already yielded in the current epoch. */
  position: number;
  /** Generator state at the start of the current epoch (the order is redrawn from it). */
  rng: RngState;
}

/** Copies the examples at `indices` into one batch buffer (the generic path; `ArrayDataset` has a faster one). */
function collate(ds: Dataset<Example>, indices: Int32Array, size: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const e = ds.get(indices[i]);
    if (e.x.length !== size) throw new ConfigError(`dataset example ${indices[i]}`, `${size} values (the loader's example shape)`, `${e.x.length} values`);
    x.set(e.x, i * size);
    y[i] = e.y;
  }
  return { x, y };
}

/**
 * Batches a dataset, redrawing the order each epoch from a seeded generator. The loader's position
 * can be saved and restored, so a resumed run sees exactly the batches (augmentations included) an
 * uninterrupted one would. Iterate synchronously (`for … of`) or asynchronously (`for await`), which
 * prepares the next `prefetch` batches in the background while the caller works on the current one.
 */
export class DataLoader implements Iterable<Batch>, AsyncIterable<Batch> {
  /** Examples per batch. */
  readonly batchSize: number;
  /** Whether a last, smaller batch is dropped. */
  readonly dropLast: boolean;
  /** The order examples are visited in. */
  readonly sampler: Sampler;
  /** Shape of one example (a batch's `x` is [B, ...exampleShape]). */
  readonly exampleShape: number[];
  /** Batches prepared ahead when iterating with `for await`. */
  readonly prefetch: number;
  private readonly rng: Rng;
  private readonly transform?: Augmentation;
  private readonly batchTransform?: BatchAugmentation;
  private epoch = 0;
  private position = 0;
  private epochStart: RngState;
  private resumeAt: number | null = null;

  constructor(
    /** The examples batched. */
    readonly dataset: Dataset<Example>,
    options: DataLoaderOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new ConfigError('DataLoader.batchSize', 'a positive integer', options.batchSize);
    this.dropLast = options.dropLast ?? false;
    this.rng = options.rng ?? new Rng(options.seed ?? 0);
    this.sampler = options.sampler ?? (options.shuffle ? new RandomSampler(dataset.length) : new SequentialSampler(dataset.length));
    const shape = options.exampleShape ?? (dataset instanceof ArrayDataset ? dataset.shape : undefined);
    if (!shape) throw new ConfigError('DataLoader.exampleShape', 'the shape of one example (needed for datasets other than ArrayDataset)', undefined);
    this.exampleShape = shape;
    this.prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new ConfigError('DataLoader.prefetch', 'an integer >= 0', options.prefetch);
    this.transform = options.transform;
    this.batchTransform = options.batchTransform;
    this.epochStart = this.rng.getState();
  }

  /** True when the order is random (a shuffling or weighted sampler). */
  get shuffle(): boolean {
    return !(this.sampler instanceof SequentialSampler);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /**
   * Starts (or resumes) an epoch: its order, the seed of its augmentations, and the first batch.
   * The augmentation seed is drawn after the order, and only when there is something to augment, so
   * loaders without transforms keep the order stream they always had.
   */
  private beginEpoch(): { order: Int32Array; augmentSeed: number; start: number } {
    if (this.resumeAt === null) this.epochStart = this.rng.getState();
    const order = this.sampler.indices(this.rng);
    const augmentSeed = this.transform || this.batchTransform ? this.rng.nextUint32() : 0;
    const start = this.resumeAt ?? 0;
    this.resumeAt = null;
    this.position = start;
    return { order, augmentSeed, start };
  }

  private endEpoch(): void {
    this.epoch++;
    this.position = 0;
    this.epochStart = this.rng.getState();
  }

  private makeBatch(order: Int32Array, b: number, augmentSeed: number): Batch {
    const indices = Int32Array.from(order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, order.length)));
    const size = this.exampleShape.reduce((a, c) => a * c, 1);
    const { x, y } = this.dataset instanceof ArrayDataset ? this.dataset.gather(indices) : collate(this.dataset, indices, size);
    let xt: tf.Tensor = tf.tensor(x, [indices.length, ...this.exampleShape], 'float32');
    let yt: tf.Tensor = tf.tensor1d(y, 'int32');
    if (this.transform || this.batchTransform) {
      // Each batch's generator depends only on the epoch's seed and the batch number, so a resumed
      // epoch augments its remaining batches exactly as the original run did.
      const rng = new Rng((augmentSeed + Math.imul(b + 1, 0x9e3779b9)) >>> 0);
      if (this.transform) {
        const next = this.transform(xt as tf.Tensor4D, rng);
        xt.dispose();
        xt = next;
      }
      if (this.batchTransform) {
        const next = this.batchTransform({ x: xt as tf.Tensor4D, y: yt }, rng);
        xt.dispose();
        yt.dispose();
        xt = next.x;
        yt = next.y;
      }
    }
    return { x: xt, y: yt, indices };
  }

  /** One epoch of batches. Each batch's tensors belong to the caller, who disposes them. */
  *[Symbol.iterator](): Iterator<Batch> {
    const { order, augmentSeed, start } = this.beginEpoch();
    const total = this.length;
    // An epoch abandoned early (limitTrainBatches, early stop) leaves the position where it was.
    for (let b = start; b < total; b++) {
      const batch = this.makeBatch(order, b, augmentSeed);
      this.position = b + 1;
      yield batch;
    }
    this.endEpoch();
  }

  /**
   * One epoch of batches, the next `prefetch` of them assembled on later turns of the event loop
   * while the caller awaits its step. Batches prepared but never taken (the caller stopped early)
   * are disposed.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    const { order, augmentSeed, start } = this.beginEpoch();
    const total = this.length;
    const ready: Promise<Batch>[] = [];
    let next = start;
    const schedule = () => {
      while (next < total && ready.length < this.prefetch + 1) {
        const b = next++;
        const p = new Promise<Batch>((resolve, reject) =>
          setImmediate(() => {
            try {
              resolve(this.makeBatch(order, b, augmentSeed));
            } catch (e) {
              reject(e);
            }
          }),
        );
        // The error surfaces when this batch is awaited; until then it must not count as unhandled.
        p.catch(() => undefined);
        ready.push(p);
      }
    };
    let b = start;
    try {
      for (; b < total; b++) {
        schedule();
        const batch = await (ready.shift() as Promise<Batch>);
        this.position = b + 1;
        schedule();
        yield batch;
      }
      this.endEpoch();
    } finally {
      for (const p of ready.splice(0)) {
        p.then((batch) => { batch.x.dispose(); batch.y.dispose(); }, () => undefined);
      }
    }
  }

  /** The loader's epoch, position and generator state, for checkpoints. */
  stateDict(): LoaderState {
    return { epoch: this.epoch, position: this.position, rng: this.epochStart };
  }

  /** The next iteration replays the saved epoch's order and starts at the saved batch. */
  loadStateDict(s: LoaderState): void {
    this.epoch = s.epoch;
    this.rng.setState(s.rng);
    this.epochStart = s.rng;
    this.position = s.position;
    this.resumeAt = s.position > 0 && s.position < this.length ? s.position : null;
  }
}
