import { tf, Rng, ConfigError, type RngState } from '@kiln/core';
import { ArrayDataset, isAsyncDataset, isGatheringDataset, type AnyExample, type Dataset, type GatheringDataset } from './dataset.js';
import { checkSchema, collateExamples, declaredSchema, describeSchema, inferSchema, isTensorSpec, toTensors, type Collated, type ExampleSchema, type HostBatch, type Schema, type TensorSpec, type TensorTree } from './collate.js';
import { RandomSampler, SequentialSampler, type Sampler } from './sampler.js';
import { nextTurn } from './next-turn.js';
import type { Augmentation, BatchAugmentation } from './augment/augmentation.js';

/**
 * One batch: every leaf of the examples' `x` and `y` stacked along a new first dimension, so a tensor
 * for a tensor-like value and a record of tensors for a record. The defaults are the common case: an
 * input tensor and a target tensor.
 */
export interface Batch<X = tf.Tensor, Y = tf.Tensor> {
  /** [B, ...exampleShape] (float32 images or features by default), or a record of such tensors. */
  x: X;
  /** [B] int32 class labels, [B, ...targetShape] targets (float32 regression, multi-hot), [B, K] soft targets after a label-mixing transform, or a record. */
  y: Y;
  /** Dataset indices of the examples, in batch order. */
  indices: Int32Array;
}

/** A batch of any structure: what the Trainer hands a `TrainingModule`, which knows its own. */
export type AnyBatch = Batch<TensorTree, TensorTree>;

/** The batch a loader over examples of type `E` yields. */
export type BatchOf<E extends AnyExample> = Batch<Collated<E['x']>, Collated<E['y']>>;

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
  /**
   * Shape of one example's `x` when it comes as a flat array (an image as h·w·c values): it is
   * stacked as float32 [B, ...exampleShape]. Datasets that declare a `shape` (`ArrayDataset`, image
   * folders) need not give it. Without it a flat array keeps its length as its shape.
   */
  exampleShape?: number[];
  /**
   * Shapes and dtypes of `x` and `y` (either or both; a leaf `{ shape, dtype }` or a record of them).
   * What is not declared is inferred from the first example of the first batch (typed arrays keep
   * their dtype; plain numbers are float32 inputs and int32 targets), and every example is checked
   * against it: a value that does not fit is an `InvalidExampleError`, never truncated.
   */
  schema?: {
    /** Declared shape and dtype of the inputs (overrides `exampleShape`). */
    x?: Schema;
    /** Declared shape and dtype of the targets. */
    y?: Schema;
  };
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

/** What reading a batch yields before collation: ready buffers (ArrayDataset, GatheringDataset) or the examples. */
type Fetched = { host: HostBatch } | { examples: AnyExample[] };

/** The schema and class count a dataset declares (`ArrayDataset`; image folders declare `shape` and `classes`). */
function ownSchema(dataset: Dataset<AnyExample>): { x?: Schema; y?: Schema } {
  const declared = declaredSchema(dataset);
  if (declared) return declared;
  const shape = (dataset as { shape?: unknown }).shape;
  return Array.isArray(shape) && shape.every((n) => Number.isInteger(n) && n > 0) ? { x: { shape: shape as number[], dtype: 'float32' } } : {};
}

const sizeOf = (spec: TensorSpec) => spec.shape.reduce((a, b) => a * b, 1);

/** True when `declared` is `own` float32 input seen in another shape of the same size (an image as a vector). */
function isReshapeOf(declared: Schema | undefined, own: TensorSpec): declared is TensorSpec {
  return !!declared && isTensorSpec(declared) && declared.dtype === 'float32' && own.dtype === 'float32' && sizeOf(declared) === sizeOf(own);
}

function numClassesOf(dataset: Dataset<AnyExample>): number | undefined {
  const classes = (dataset as { classes?: unknown }).classes;
  return Array.isArray(classes) && classes.length > 0 ? classes.length : undefined;
}

/**
 * Batches a dataset, redrawing the order each epoch from a seeded generator. The loader's position
 * can be saved and restored, so a resumed run sees exactly the batches (augmentations included) an
 * uninterrupted one would. Iterate synchronously (`for … of`) or asynchronously (`for await`), which
 * prepares the next `prefetch` batches in the background while the caller works on the current one.
 */
export class DataLoader<E extends AnyExample = AnyExample> implements Iterable<BatchOf<E>>, AsyncIterable<BatchOf<E>> {
  /** Examples per batch. */
  readonly batchSize: number;
  /** Whether a last, smaller batch is dropped. */
  readonly dropLast: boolean;
  /** The order examples are visited in. */
  readonly sampler: Sampler;
  /** The declared shape of a flat `x` (see `DataLoaderOptions.exampleShape`), if any. */
  readonly exampleShape?: number[];
  /** Batches prepared ahead when iterating with `for await`. */
  readonly prefetch: number;
  /** True when the caller chose the generator (`seed` or `rng`); a Trainer seeds the others from its own `seed`. */
  readonly seeded: boolean;
  private readonly declared: { x?: Schema; y?: Schema };
  private resolved?: ExampleSchema;
  /** The dataset gathers whole batches (`GatheringDataset`) in the schema the loader collates to: `for await` reads them with `gatherMany`. */
  private readonly gathers: boolean = false;
  private readonly numClasses?: number;
  private readonly rng: Rng;
  private readonly transform?: Augmentation;
  private readonly batchTransform?: BatchAugmentation;
  private readonly options: DataLoaderOptions;
  private epoch = 0;
  private position = 0;
  private epochStart: RngState;
  private resumeAt: number | null = null;

  constructor(
    /** The dataset the loader batches. */
    readonly dataset: Dataset<E>,
    options: DataLoaderOptions = {},
  ) {
    this.options = options;
    this.batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new ConfigError('DataLoader.batchSize', 'a positive integer', options.batchSize);
    this.dropLast = options.dropLast ?? false;
    this.rng = options.rng ?? new Rng(options.seed ?? 0);
    this.seeded = options.rng !== undefined || options.seed !== undefined;
    this.sampler = options.sampler ?? (options.shuffle ? new RandomSampler(dataset.length) : new SequentialSampler(dataset.length));
    const own = ownSchema(dataset);
    if (options.exampleShape) checkSchema({ shape: options.exampleShape, dtype: 'float32' }, 'DataLoader.exampleShape');
    if (options.schema?.x) checkSchema(options.schema.x, 'DataLoader.schema.x');
    if (options.schema?.y) checkSchema(options.schema.y, 'DataLoader.schema.y');
    const xFromShape: Schema | undefined = options.exampleShape ? { shape: options.exampleShape, dtype: 'float32' } : undefined;
    this.declared = { x: options.schema?.x ?? xFromShape ?? own.x, y: options.schema?.y ?? own.y };
    if (dataset instanceof ArrayDataset) {
      // An ArrayDataset's buffers are its schema. Its x may be viewed in another shape of the same
      // size (an image as a vector); anything else declared cannot be honoured.
      const mine = dataset.schema;
      const dx = this.declared.x;
      const reshaped = isReshapeOf(dx, mine.x as TensorSpec);
      const x = reshaped ? dx : mine.x;
      if (dx && !reshaped) throw new ConfigError('DataLoader.schema.x', `${describeSchema(mine.x)} (the ArrayDataset's own) or float32 of the same size`, describeSchema(dx));
      const dy = this.declared.y;
      if (dy && describeSchema(dy) !== describeSchema(mine.y)) throw new ConfigError('DataLoader.schema.y', `${describeSchema(mine.y)} (the ArrayDataset's own)`, describeSchema(dy));
      this.resolved = { x, y: mine.y };
    } else if (isGatheringDataset(dataset)) {
      // Batches come gathered in the dataset's own schema, its x possibly seen in another shape of
      // the same size; any other declaration is honoured by collating examples from getMany, as for
      // every other dataset.
      const mine = dataset.schema;
      const dx = this.declared.x;
      const dy = this.declared.y;
      const x = dx === undefined || describeSchema(dx) === describeSchema(mine.x) ? mine.x : isReshapeOf(dx, mine.x) ? dx : undefined;
      if (x && (dy === undefined || describeSchema(dy) === describeSchema(mine.y))) {
        this.resolved = { x, y: mine.y };
        this.gathers = true;
      }
    }
    const x = this.declared.x;
    this.exampleShape = x && isTensorSpec(x) ? x.shape : undefined;
    this.numClasses = numClassesOf(dataset);
    this.prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new ConfigError('DataLoader.prefetch', 'an integer >= 0', options.prefetch);
    this.transform = options.transform;
    this.batchTransform = options.batchTransform;
    this.epochStart = this.rng.getState();
  }

  /**
   * A loader over the same dataset with the same options (sampler, transforms, schema, prefetch)
   * but `batchSize` examples per batch, and a generator of its own that starts where this one's
   * stands: tools that try batch sizes or run trial steps (the tuner) iterate it and leave this
   * loader's order and position untouched.
   */
  withBatchSize(batchSize: number): DataLoader<E> {
    const copy = new DataLoader(this.dataset, { ...this.options, batchSize, sampler: this.sampler, rng: undefined, seed: 0 });
    copy.rng.setState(this.rng.getState());
    copy.epochStart = copy.rng.getState();
    return copy;
  }

  /** Reseeds the loader's generator, as if it had been built with `seed` (before its first epoch). */
  manualSeed(seed: number): void {
    this.rng.setState(new Rng(seed).getState());
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

  /** The schema batches are collated to: declared, or inferred from the first example read (undefined before). */
  get schema(): ExampleSchema | undefined {
    return this.resolved ?? (this.declared.x && this.declared.y ? (this.declared as ExampleSchema) : undefined);
  }

  /** A gathered batch's two buffers as host arrays of the resolved schema (one leaf each). */
  private gathered(x: Float32Array | Int32Array, y: Float32Array | Int32Array, n: number): Fetched {
    const { x: xs, y: ys } = this.resolved as { x: TensorSpec; y: TensorSpec };
    return { host: { x: { data: x, shape: [n, ...xs.shape] }, y: { data: y, shape: [n, ...ys.shape] } } };
  }

  /** Reads a batch synchronously (in-memory and other synchronous datasets). */
  private readBatch(indices: Int32Array): Fetched {
    const ds = this.dataset;
    if (ds instanceof ArrayDataset) {
      const { x, y } = ds.gather(indices);
      return this.gathered(x, y, indices.length);
    }
    return { examples: Array.from(indices, (i) => ds.get(i)) };
  }

  /** A `GatheringDataset`'s batch, checked against the schema it declares (a mismatch would make tensors of the wrong size or dtype). */
  private async gatherBatch(indices: Int32Array, wanted?: Promise<void>): Promise<Fetched> {
    const { x, y } = await (this.dataset as unknown as GatheringDataset<E>).gatherMany(indices, { wanted });
    const n = indices.length;
    const { x: xs, y: ys } = this.resolved as { x: TensorSpec; y: TensorSpec };
    for (const [name, data, spec] of [['x', x, xs], ['y', y, ys]] as const) {
      if (data.length !== n * sizeOf(spec) || data instanceof Int32Array !== (spec.dtype === 'int32')) {
        throw new ConfigError(`GatheringDataset.gatherMany(indices).${name}`, `${n * sizeOf(spec)} ${spec.dtype} values (${n} examples of [${spec.shape.join(', ')}])`, `${data.length} in a ${data.constructor.name}`);
      }
    }
    return this.gathered(x, y, n);
  }

  /**
   * Reads a batch without blocking: one `gatherMany` (a `GatheringDataset`) or `getMany` (an
   * `AsyncDataset`) call, which its pool works on while the caller trains, otherwise a synchronous
   * read on a later turn of the event loop.
   */
  private fetchBatch(indices: Int32Array, wanted?: Promise<void>): Promise<Fetched> {
    const ds = this.dataset;
    if (this.gathers) return this.gatherBatch(indices, wanted);
    if (isAsyncDataset(ds)) return ds.getMany(indices).then((examples) => ({ examples }));
    return new Promise<Fetched>((resolve, reject) =>
      nextTurn(() => {
        try {
          resolve(this.readBatch(indices));
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  /**
   * Stacks a batch's examples into host buffers. The schema is fixed by the first batch collated
   * (batches are collated in order, so that is always the epoch's first example read).
   */
  private collate(fetched: Fetched, indices: Int32Array): HostBatch {
    if ('host' in fetched) return fetched.host;
    const { examples } = fetched;
    if (examples.length !== indices.length) throw new ConfigError('AsyncDataset.getMany(indices)', `${indices.length} examples, one per index`, `${examples.length}`);
    this.resolved ??= inferSchema(examples[0], indices[0], this.declared);
    return collateExamples(examples, indices, this.resolved, { numClasses: this.numClasses });
  }

  /** Uploads a batch and augments it with the generator of batch `b`. */
  private toBatch(host: HostBatch, indices: Int32Array, b: number, augmentSeed: number): BatchOf<E> {
    const augment = this.transform || this.batchTransform;
    const xTensor = 'data' in host.x;
    if (augment && (!xTensor || (this.batchTransform && !('data' in host.y)))) {
      throw new ConfigError(
        'DataLoader.transform',
        'examples whose x (and, for a batchTransform, y) is one tensor',
        `x: ${this.resolved ? describeSchema(this.resolved.x) : 'a record'}`,
        'augment records in a mapDataset (per example) or in the module\'s step',
      );
    }
    let xt = toTensors(host.x);
    let yt = toTensors(host.y);
    if (augment) {
      // Each batch's generator depends only on the epoch's seed and the batch number, so a resumed
      // epoch augments its remaining batches exactly as the original run did.
      const rng = new Rng((augmentSeed + Math.imul(b + 1, 0x9e3779b9)) >>> 0);
      if (this.transform) {
        const next = this.transform(xt as tf.Tensor4D, rng);
        // A transform may hand its input back unchanged (an augmentation that chose to do nothing).
        if (next !== xt) tf.dispose(xt);
        xt = next;
      }
      if (this.batchTransform) {
        const next = this.batchTransform({ x: xt as tf.Tensor4D, y: yt as tf.Tensor }, rng);
        tf.dispose([xt, yt].filter((t) => t !== next.x && t !== next.y));
        xt = next.x;
        yt = next.y;
      }
    }
    return { x: xt, y: yt, indices } as BatchOf<E>;
  }

  /**
   * One epoch of batches. Each batch's tensors belong to the caller, who disposes them. An
   * `AsyncDataset` cannot be read this way: iterate it with `for await`.
   */
  *[Symbol.iterator](): Iterator<BatchOf<E>> {
    if (isAsyncDataset(this.dataset)) {
      throw new ConfigError('DataLoader iteration', 'asynchronous iteration (`for await (const batch of loader)`) for a dataset with getMany', 'for … of', 'iterate the loader with for await; its dataset produces examples asynchronously');
    }
    const { order, augmentSeed, start } = this.beginEpoch();
    const total = this.length;
    // An epoch abandoned early (limitTrainBatches, early stop) leaves the position where it was.
    for (let b = start; b < total; b++) {
      const indices = this.batchIndices(order, b);
      const batch = this.toBatch(this.collate(this.readBatch(indices), indices), indices, b, augmentSeed);
      this.position = b + 1;
      yield batch;
    }
    this.endEpoch();
  }

  /**
   * One epoch of batches, with the next `prefetch` batches being read while the caller awaits its
   * step: an `AsyncDataset` gets one `getMany` (a `GatheringDataset` one `gatherMany`) per batch,
   * several in flight; other datasets are read on later turns of the event loop. Batches come out
   * in order whatever order the reads finish in. Only host arrays are read ahead; tensors are made (and augmented) when a batch is
   * handed out, so an epoch left early (limitTrainBatches, early stop) leaves no tensors behind,
   * and reads still in flight are dropped.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<BatchOf<E>> {
    const { order, augmentSeed, start } = this.beginEpoch();
    const total = this.length;
    const pending: { indices: Int32Array; fetched: Promise<Fetched>; want: () => void }[] = [];
    let next = start;
    const schedule = (ahead: number) => {
      while (next < total && pending.length < ahead) {
        const indices = this.batchIndices(order, next++);
        // Settled when this batch is awaited, so that a gathering dataset may finish a late batch on this thread.
        let want = () => undefined as void;
        const wanted = new Promise<void>((resolve) => (want = resolve));
        const fetched = this.fetchBatch(indices, wanted);
        // The error surfaces when this batch is awaited; until then (or if it never is) it must not count as unhandled.
        fetched.catch(() => undefined);
        pending.push({ indices, fetched, want });
      }
    };
    for (let b = start; b < total; b++) {
      schedule(this.prefetch + 1);
      const { indices, fetched, want } = pending.shift() as (typeof pending)[number];
      want();
      const batch = this.toBatch(this.collate(await fetched, indices), indices, b, augmentSeed);
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
