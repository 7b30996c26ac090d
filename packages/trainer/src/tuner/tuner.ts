import { tf, ConfigError, KilnError, defaultRng } from '@kiln/core';
import type { AnyBatch, DataLoader } from '@kiln/data';
import { findLr, snapshotTraining, type FindLrResult, type Optimizer } from '@kiln/optim';
import { withRegularization } from '../loops/optimization.js';
import type { TrainingModule } from '../training-module.js';
import type { Trainer } from '../trainer.js';

/** Options of {@link Tuner.lrFind}. */
export interface LrFindOptions {
  /** First rate of the sweep (default 1e-7). */
  startLr?: number;
  /** Last rate of the sweep (default 10). */
  endLr?: number;
  /** Steps of the sweep, one batch each (default 100); the loader is cycled when it has fewer batches. */
  numSteps?: number;
  /** Weight of the loss's moving average, in [0, 1) (default 0.98). */
  smoothing?: number;
  /** Stop once the smoothed loss exceeds this multiple of the best one (default 4). */
  divergenceThreshold?: number;
}

/** What {@link Tuner.lrFind} returns: the sweep (see `findLr` in `@kiln/optim`) and its suggestion. */
export type LrFindResult = FindLrResult;

/** Options of {@link Tuner.scaleBatchSize}. */
export interface ScaleBatchSizeOptions {
  /**
   * `power` (default) doubles the batch until something says stop; `binsearch` then searches
   * between the last size that fitted and the first that did not (Lightning's two modes).
   */
  mode?: 'power' | 'binsearch';
  /** First batch size tried (default: the loader's). */
  initBatchSize?: number;
  /** Largest batch size tried (default: the dataset's length). */
  maxBatchSize?: number;
  /** Timed steps per batch size, after one untimed warm-up step (default 3). */
  steps?: number;
  /**
   * Backend memory a step may use at its peak, in bytes (tfjs' count of the bytes its tensors hold:
   * `tf.profile().peakBytes`). A size over it stops the search. Default: none.
   */
  memoryBudget?: number;
  /** Resident set size of the process a step may reach, in bytes, where the host reports one (Node). Default: none. */
  rssBudget?: number;
  /**
   * Stop once a size's throughput (samples per second) falls below this fraction of the best seen
   * so far: a larger batch that is slower per sample is not worth its memory (default 0.9).
   */
  minThroughputRatio?: number;
}

/** One batch size tried by {@link Tuner.scaleBatchSize}. */
export interface BatchSizeTrial {
  /** Examples per batch. */
  batchSize: number;
  /** Whether the steps ran, within the budgets. */
  fits: boolean;
  /** Samples per second over the timed steps (NaN when the step failed). */
  samplesPerSec: number;
  /** Seconds per timed step (NaN when the step failed). */
  stepSeconds: number;
  /** Peak backend bytes during the warm-up step (NaN when the step failed). */
  peakBytes: number;
  /** Process resident set size after the steps, where the host reports one (else NaN). */
  rssBytes: number;
  /** Why the size does not fit: `out of memory`, `memory budget`, `rss budget`; absent when it fits. */
  failure?: string;
}

/** What {@link Tuner.scaleBatchSize} returns. */
export interface ScaleBatchSizeResult {
  /** The suggested batch size: the largest that fitted whose throughput is within `minThroughputRatio` of the best. */
  suggestion: number;
  /** Every size tried, in order. */
  trials: BatchSizeTrial[];
  /** Why the search ended, in words. */
  stoppedBecause: string;
}

/**
 * Finds settings before a run, the way Lightning's `Tuner` does: {@link Tuner.lrFind} (the
 * learning-rate range test) and {@link Tuner.scaleBatchSize} (the largest batch the backend's
 * memory and speed allow). Both train for a few steps and then put everything back — weights,
 * batch-norm statistics, optimizer state, the random generator, the loader's position — so the
 * module trains afterwards exactly as if it had not been tuned. Modules with manual optimization
 * are not supported: the tuner steps the module's one optimizer on `trainingStep`'s loss.
 */
export class Tuner {
  constructor(
    /** The trainer the module is tuned for; set as `module.trainer` while the trial steps run, for hooks that read it. */
    readonly trainer?: Trainer,
  ) {}

  /**
   * The learning-rate range test (`findLr` from `@kiln/optim`, Smith 2017) on `module`'s first
   * optimizer and training loss, over `loader`'s batches. Everything it trains is restored.
   */
  async lrFind(module: TrainingModule, loader: DataLoader, options: LrFindOptions = {}): Promise<LrFindResult> {
    const batches = this.batchesOf(loader.withBatchSize(loader.batchSize));
    return this.trial(module, async (optimizer, restore) => {
      let batch: AnyBatch | undefined;
      try {
        return await findLr({
          ...options,
          optimizer,
          restore,
          beforeStep: async () => {
            if (batch) tf.dispose([batch.x, batch.y] as tf.Tensor[]);
            batch = await batches.next();
          },
          loss: (i) => stepLoss(module, batch as AnyBatch, i),
        });
      } finally {
        if (batch) tf.dispose([batch.x, batch.y] as tf.Tensor[]);
        await batches.close();
      }
    });
  }

  /**
   * Grows the batch from `initBatchSize` (doubling; then a binary search with `mode: 'binsearch'`)
   * while the steps run: a failed allocation (caught, the process carries on), a peak over
   * `memoryBudget`/`rssBudget`, or throughput falling below `minThroughputRatio` of the best ends
   * the search. Each size runs one warm-up step (its peak memory measured with `tf.profile`) and
   * `steps` timed ones. Everything it trains is restored.
   */
  async scaleBatchSize(module: TrainingModule, loader: DataLoader, options: ScaleBatchSizeOptions = {}): Promise<ScaleBatchSizeResult> {
    const mode = options.mode ?? 'power';
    if (mode !== 'power' && mode !== 'binsearch') throw new ConfigError('scaleBatchSize.mode', "'power' or 'binsearch'", mode);
    const n = loader.dataset.length;
    const maxBatch = options.maxBatchSize ?? n;
    const init = options.initBatchSize ?? loader.batchSize;
    if (!(Number.isInteger(maxBatch) && maxBatch >= 1)) throw new ConfigError('scaleBatchSize.maxBatchSize', 'a positive integer', options.maxBatchSize);
    if (!(Number.isInteger(init) && init >= 1 && init <= maxBatch)) throw new ConfigError('scaleBatchSize.initBatchSize', `an integer in [1, ${maxBatch}] (maxBatchSize)`, init);
    const steps = options.steps ?? 3;
    if (!(Number.isInteger(steps) && steps >= 1)) throw new ConfigError('scaleBatchSize.steps', 'an integer >= 1', options.steps);
    const ratio = options.minThroughputRatio ?? 0.9;
    if (!(ratio > 0 && ratio <= 1)) throw new ConfigError('scaleBatchSize.minThroughputRatio', 'a number in (0, 1]', options.minThroughputRatio);
    for (const k of ['memoryBudget', 'rssBudget'] as const) {
      const v = options[k];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new ConfigError(`scaleBatchSize.${k}`, 'a number of bytes > 0', v);
    }

    return this.trial(module, async (optimizer, restore) => {
      const trials: BatchSizeTrial[] = [];
      const run = async (b: number): Promise<BatchSizeTrial> => {
        // Each size starts from the same weights, so a diverging trial cannot poison the next.
        const snap = snapshotTraining(optimizer, restore);
        try {
          const t = await this.timeBatchSize(module, optimizer, loader.withBatchSize(b), b, steps, options);
          trials.push(t);
          return t;
        } finally {
          snap.restore();
        }
      };
      const best = () => Math.max(...trials.filter((t) => t.fits).map((t) => t.samplesPerSec));
      let good = 0;
      let bad = 0;
      let why = '';
      for (let b = init; ; b = Math.min(maxBatch, 2 * b)) {
        const t = await run(b);
        if (!t.fits) {
          bad = b;
          why = t.failure as string;
          break;
        }
        good = b;
        if (t.samplesPerSec < ratio * best()) {
          why = `throughput fell below ${ratio} of the best`;
          break;
        }
        if (b >= maxBatch) {
          why = `reached the largest size allowed (${maxBatch})`;
          break;
        }
      }
      if (mode === 'binsearch' && good > 0 && bad > good + 1) {
        // Memory, not speed, stopped the doubling: search the gap for the largest size that fits.
        let [lo, hi] = [good, bad];
        while (hi - lo > Math.max(1, Math.floor(lo / 16))) {
          const mid = Math.floor((lo + hi) / 2);
          if ((await run(mid)).fits) lo = mid;
          else hi = mid;
        }
      }
      const fitted = trials.filter((t) => t.fits);
      if (fitted.length === 0) throw new KilnError('E_BATCH_TOO_LARGE', `batch size ${init} does not fit: ${why}`, { where: 'Tuner.scaleBatchSize', hint: 'start from a smaller initBatchSize, or raise the memory budget' });
      const top = best();
      const suggestion = Math.max(...fitted.filter((t) => t.samplesPerSec >= ratio * top).map((t) => t.batchSize));
      return { suggestion, trials, stoppedBecause: why };
    });
  }

  /** Warm-up step under `tf.profile`, then `steps` timed steps, at batch size `b`. */
  private async timeBatchSize(module: TrainingModule, optimizer: Optimizer, loader: DataLoader, b: number, steps: number, options: ScaleBatchSizeOptions): Promise<BatchSizeTrial> {
    const failed = (failure: string, peakBytes = NaN, rssBytes = NaN): BatchSizeTrial => ({ batchSize: b, fits: false, samplesPerSec: NaN, stepSeconds: NaN, peakBytes, rssBytes, failure });
    const batches = this.batchesOf(loader);
    try {
      let peakBytes = NaN;
      let seconds = 0;
      let samples = 0;
      for (let s = 0; s <= steps; s++) {
        const batch = await batches.next();
        const t0 = performance.now();
        try {
          if (s === 0) peakBytes = (await tf.profile(() => trainStep(module, optimizer, batch, s))).peakBytes;
          else await trainStep(module, optimizer, batch, s);
        } finally {
          tf.dispose([batch.x, batch.y] as tf.Tensor[]);
        }
        if (s > 0) {
          seconds += (performance.now() - t0) / 1000;
          samples += b;
        }
        if (s === 0 && options.memoryBudget !== undefined && peakBytes > options.memoryBudget) return failed('memory budget', peakBytes, rss());
      }
      const rssBytes = rss();
      if (options.rssBudget !== undefined && rssBytes > options.rssBudget) return failed('rss budget', peakBytes, rssBytes);
      return { batchSize: b, fits: true, samplesPerSec: samples / seconds, stepSeconds: seconds / steps, peakBytes, rssBytes };
    } catch (e) {
      if (isAllocationFailure(e)) return failed('out of memory');
      throw e;
    } finally {
      await batches.close();
    }
  }

  /**
   * Runs `body` with the module's optimizer in training mode, then restores everything it may have
   * changed: weights, buffers and frozen parameters, the optimizer, the random generator, the
   * module's mode and `trainer` field.
   */
  private async trial<T>(module: TrainingModule, body: (optimizer: Optimizer, restore: tf.Variable[]) => Promise<T>): Promise<T> {
    if (!module.automaticOptimization) throw new ConfigError(`${module.constructor.name}.automaticOptimization`, 'true: the tuner steps the module’s optimizer on the training loss', false);
    const configured = module.configureOptimizers();
    const list = Array.isArray(configured) ? configured : [configured];
    if (list.length !== 1) throw new ConfigError(`${module.constructor.name}.configureOptimizers()`, 'one optimizer configuration', `${list.length} configurations`);
    const optimizer = list[0].optimizer;
    const model = module.model;
    const inOptimizer = new Set(optimizer.paramGroups.flatMap((g) => g.params));
    const restore = [...model.namedBuffers().map(([, b]) => b), ...model.parameters().map((p) => p.variable).filter((v) => !inOptimizer.has(v))];
    const rng = defaultRng().getState();
    const wasTraining = model.training;
    const previousTrainer = module.trainer;
    if (this.trainer) module.trainer = this.trainer;
    const snapshot = snapshotTraining(optimizer, restore);
    model.train();
    try {
      return await body(optimizer, restore);
    } finally {
      snapshot.restore();
      defaultRng().setState(rng);
      model.train(wasTraining);
      module.trainer = previousTrainer;
    }
  }

  /** An endless batch source over `loader`, starting a new epoch whenever one ends. */
  private batchesOf(loader: DataLoader): { next(): Promise<AnyBatch>; close(): Promise<void> } {
    let it = loader[Symbol.asyncIterator]();
    return {
      async next() {
        let r = await it.next();
        if (r.done) {
          it = loader[Symbol.asyncIterator]();
          r = await it.next();
          if (r.done) throw new ConfigError('Tuner loader', 'a loader with at least one batch', 'an empty loader');
        }
        return r.value as AnyBatch;
      },
      async close() {
        await it.return?.();
      },
    };
  }
}

/** `createTuner(trainer)`: the composition-root spelling of `new Tuner(trainer)`. */
export function createTuner(trainer?: Trainer): Tuner {
  return new Tuner(trainer);
}

/** The training loss of one batch (regularizer penalties included, as the trainer's step adds them), for use under the gradient tape. */
function stepLoss(module: TrainingModule, batch: AnyBatch, i: number): tf.Scalar {
  const o = module.trainingStep(batch, i);
  if (o instanceof Promise) throw new KilnError('E_ASYNC_STEP', `${module.constructor.name}.trainingStep returned a promise`, { hint: 'the tuner records trainingStep under the gradient tape, which cannot wait' });
  if (!o.loss) throw new KilnError('E_NO_LOSS', 'trainingStep returned no loss', { where: `${module.constructor.name}.trainingStep`, hint: 'return { loss, logs, batchSize }' });
  return withRegularization(module, o.loss);
}

/** One optimizer step on one batch, finished (its loss read back) before it returns. */
async function trainStep(module: TrainingModule, optimizer: Optimizer, batch: AnyBatch, i: number): Promise<void> {
  const vars = optimizer.paramGroups.flatMap((g) => g.params).filter((p) => p.trainable);
  const { value, grads } = tf.variableGrads(() => stepLoss(module, batch, i), vars);
  try {
    optimizer.step(grads);
    // Reading the loss waits for the step's kernels, so the time measured is the step's.
    await value.data();
  } finally {
    value.dispose();
    tf.dispose(grads);
  }
}

/** The process's resident set size where the host reports one (Node), else NaN; read without importing `node:*`. */
function rss(): number {
  const p = (globalThis as { process?: { memoryUsage?: () => { rss: number } } }).process;
  return typeof p?.memoryUsage === 'function' ? p.memoryUsage().rss : NaN;
}

/**
 * Whether `e` is a failed allocation rather than a bug: V8's `RangeError` for a buffer it cannot
 * allocate, WebAssembly's failure to grow its memory (the WASM backend), tfjs-node/CUDA and WebGPU
 * out-of-memory messages.
 */
export function isAllocationFailure(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof RangeError && /alloc|buffer|length/i.test(e.message)) return true;
  return /out of memory|\bOOM\b|could not allocate|failed to allocate|allocation failed|cannot enlarge memory|memory access out of bounds|Aborted\(OOM\)|grow memory/i.test(e.message);
}
