import { tf, Rng, ConfigError, type RngState } from '@kiln/core';
import { ArrayDataset, isAsyncDataset, type Dataset, type Example } from './dataset.js';
import { RandomSampler, SequentialSampler, type Sampler } from './sampler.js';
import type { Augmentation, BatchAugmentation } from './augment/augmentation.js';

export interface Batch {
  /** [B, ...exampleShape] float32 */
  x: tf.Tensor;
  /** [B] int32 labels, or [B, K] float32 targets after a label-mixing transform. */
  y: tf.Tensor;
  /** Dataset indices of the examples, in batch order. */
  indices: Int32Array;
}

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
  /** Shape of one example, for datasets that do not declare a `shape` (`ArrayDataset` and image folders do). */
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
  epoch: number;
  /** Batches already yielded in the current epoch. */
  position: number;
  /** Generator state at the start of the current epoch (the order is redrawn from it). */
  rng: RngState;
}

/** One batch on the host, before it becomes tensors. */
interface HostBatch {
  x: Float32Array;
  y: Int32Array;
}

/** Copies `examples` (read at `indices`) into one batch buffer (the generic path; `ArrayDataset` has a faster one). */
function collate(examples: readonly Example[], indices: Int32Array, size: number): HostBatch {
  const x = new Float32Array(examples.length * size);
  const y = new Int32Array(examples.length);
  for (let i = 0; i < examples.length; i++) {
    const e = examples[i];
    if (e.x.length !== size) throw new ConfigError(`dataset example ${indices[i]}`, `${size} values (the loader's example shape)`, `${e.x.length} values`);
    x.set(e.x, i * size);
    y[i] = e.y;
  }
  return { x, y };
}

/** The example shape a dataset declares (`ArrayDataset`, image folders: a `shape` of numbers), if any. */
function ownShape(dataset: Dataset<Example>): number[] | undefined {
  const shape = (dataset as { shape?: unknown }).shape;
  return Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d > 0) ? (shape as number[]) : undefined;
}

/**
 * Batches a dataset, redrawing the order each epoch from a seeded generator. The loader's position
 * can be saved and restored, so a resumed run sees exactly the batches (augmentations included) an
 * uninterrupted one would. Iterate synchronously (`for … of`) or asynchronously (`for await`), which
 * prepares the next `prefetch` batches in the background while the caller works on the current one.
 */
export class DataLoader implements Iterable<Batch>, AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly sampler: Sampler;
  readonly exampleShape: number[];
  readonly prefetch: number;
  private readonly rng: Rng;
  private readonly transform?: Augmentation;
  private readonly batchTransform?: BatchAugmentation;
  private epoch = 0;
  private position = 0;
  private epochStart: RngState;
  private resumeAt: number | null = null;

  constructor(
    readonly dataset: Dataset<Example>,
    options: DataLoaderOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new ConfigError('DataLoader.batchSize', 'a positive integer', options.batchSize);
    this.dropLast = options.dropLast ?? false;
    this.rng = options.rng ?? new Rng(options.seed ?? 0);
    this.sampler = options.sampler ?? (options.shuffle ? new RandomSampler(dataset.length) : new SequentialSampler(dataset.length));
    const shape = options.exampleShape ?? ownShape(dataset);
    if (!shape) throw new ConfigError('DataLoader.exampleShape', 'the shape of one example (needed for datasets that do not declare a `shape`)', undefined);
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

  /** Dataset indices of batch `b` of an epoch's `order`. */
  private batchIndices(order: Int32Array, b: number): Int32Array {
    return Int32Array.from(order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, order.length)));
  }

  private get exampleSize(): number {
    return this.exampleShape.reduce((a, c) => a * c, 1);
  }

  /** Reads a batch synchronously (in-memory and other synchronous datasets). */
  private readBatch(indices: Int32Array): HostBatch {
    const ds = this.dataset;
    if (ds instanceof ArrayDataset) return ds.gather(indices);
    return collate(Array.from(indices, (i) => ds.get(i)), indices, this.exampleSize);
  }

  /**
   * Reads a batch without blocking: one `getMany` call for an `AsyncDataset` (its pool works on it
   * while the caller trains), otherwise a synchronous read on a later turn of the event loop.
   */
  private fetchBatch(indices: Int32Array): Promise<HostBatch> {
    const ds = this.dataset;
    if (isAsyncDataset(ds)) return ds.getMany(indices).then((examples) => collate(examples, indices, this.exampleSize));
    return new Promise<HostBatch>((resolve, reject) =>
      setImmediate(() => {
        try {
          resolve(this.readBatch(indices));
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  /** Uploads a batch and augments it with the generator of batch `b`. */
  private toBatch(host: HostBatch, indices: Int32Array, b: number, augmentSeed: number): Batch {
    let xt: tf.Tensor = tf.tensor(host.x, [indices.length, ...this.exampleShape], 'float32');
    let yt: tf.Tensor = tf.tensor1d(host.y, 'int32');
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

  /**
   * One epoch of batches. Each batch's tensors belong to the caller, who disposes them. An
   * `AsyncDataset` cannot be read this way: iterate it with `for await`.
   */
  *[Symbol.iterator](): Iterator<Batch> {
    if (isAsyncDataset(this.dataset)) {
      throw new ConfigError('DataLoader iteration', 'asynchronous iteration (`for await (const batch of loader)`) for a dataset with getMany', 'for … of', 'iterate the loader with for await; its dataset produces examples asynchronously');
    }
    const { order, augmentSeed, start } = this.beginEpoch();
    const total = this.length;
    // An epoch abandoned early (limitTrainBatches, early stop) leaves the position where it was.
    for (let b = start; b < total; b++) {
      const indices = this.batchIndices(order, b);
      const batch = this.toBatch(this.readBatch(indices), indices, b, augmentSeed);
      this.position = b + 1;
      yield batch;
    }
    this.endEpoch();
  }

  /**
   * One epoch of batches, with the next `prefetch` batches being read while the caller awaits its
   * step: an `AsyncDataset` gets one `getMany` per batch, several in flight; other datasets are
   * read on later turns of the event loop. Batches come out in order whatever order the reads
   * finish in. Only host arrays are read ahead; tensors are made (and augmented) when a batch is
   * handed out, so an epoch left early (limitTrainBatches, early stop) leaves no tensors behind,
   * and reads still in flight are dropped.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    const { order, augmentSeed, start } = this.beginEpoch();
    const total = this.length;
    const pending: { indices: Int32Array; host: Promise<HostBatch> }[] = [];
    let next = start;
    const schedule = (ahead: number) => {
      while (next < total && pending.length < ahead) {
        const indices = this.batchIndices(order, next++);
        const host = this.fetchBatch(indices);
        // The error surfaces when this batch is awaited; until then (or if it never is) it must not count as unhandled.
        host.catch(() => undefined);
        pending.push({ indices, host });
      }
    };
    for (let b = start; b < total; b++) {
      schedule(this.prefetch + 1);
      const { indices, host } = pending.shift() as (typeof pending)[number];
      const batch = this.toBatch(await host, indices, b, augmentSeed);
      this.position = b + 1;
      // Keep `prefetch` reads going while the caller works on this batch.
      schedule(this.prefetch);
      yield batch;
    }
    this.endEpoch();
  }

  /**
   * Draws an epoch's order (and augmentation seed) from the generator without reading a single
   * example, leaving the loader at the start of the following epoch, as if that epoch had been
   * abandoned before its first batch. A resumed run uses it to replay an epoch that was cut short
   * (limitTrainBatches, maxSteps) so the next epoch's order matches the uninterrupted run.
   */
  skipEpoch(): void {
    this.beginEpoch();
    this.position = 0;
    this.epochStart = this.rng.getState();
  }

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
