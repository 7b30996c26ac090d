import { tf, ConfigError } from '@kiln/core';

/** How the values an epoch logged under one name become that epoch's value. */
export type LogReduce = 'mean' | 'sum' | 'max' | 'min';

/** Options of `TrainingModule.log`, with Lightning's meaning and defaults. */
export interface LogOptions {
  /**
   * Record the value of this step (key `name`, or `name_step` with `onEpoch` too). Default: true in
   * `trainingStep` and the training batch hooks, false elsewhere.
   */
  onStep?: boolean;
  /**
   * Reduce the values of the epoch into one (key `name`, or `name_epoch` with `onStep` too), set in
   * `trainer.callbackMetrics` at the epoch's end. Default: false in `trainingStep` and the training
   * batch hooks, true elsewhere.
   */
  onEpoch?: boolean;
  /** Show the value in the progress bar (default false). */
  progBar?: boolean;
  /**
   * How the epoch's values are reduced: `mean` (default; weighted by each step's batch size, as
   * Lightning does), `sum`, `max` or `min`.
   */
  reduce?: LogReduce;
  /** Weight of this value in a `mean` (default: the step's `batchSize`, or 1 outside a step). */
  batchSize?: number;
}

/** One reduction in progress: the accumulator stays on the device until the epoch ends. */
interface EpochEntry {
  reduce: LogReduce;
  /** mean: Σ value·weight; sum: Σ value; max/min: the extreme so far. */
  acc: tf.Scalar;
  /** Σ weight (the divisor of a mean). */
  weight: number;
  progBar: boolean;
}

/** A value logged during the step that has not been committed yet. */
interface Pending {
  value: tf.Scalar;
  stepKey: string | null;
  epochKey: string | null;
  reduce: LogReduce;
  batchSize?: number;
  progBar: boolean;
}

/** A running reduction as checkpointed: the accumulator read to the host. */
export interface SavedReduction {
  /** How the values are reduced. */
  reduce: LogReduce;
  /** The accumulator (see `EpochEntry.acc`); null for NaN, as JSON writes it. */
  acc: number | null;
  /** Σ weight. */
  weight: number;
}

const REDUCES: readonly LogReduce[] = ['mean', 'sum', 'max', 'min'];

/**
 * The values a stage logs (Lightning's result collection): each step's values and the running
 * epoch reductions, all kept as device scalars. Nothing is read to the host until someone asks:
 * `stepValues()` (a logger at `logEveryNSteps`, a callback reading `trainer.lastTrainMetrics`, the
 * progress bar) or `epochValues()` (once per epoch), each one read of one stacked tensor.
 */
export class ResultCollection {
  private pending: Pending[] = [];
  /** The last committed step's values; replaced (and the old ones disposed) by the next commit. */
  private step = new Map<string, { value: tf.Scalar; progBar: boolean }>();
  private epoch = new Map<string, EpochEntry>();
  /** Host copy of `step`, once read; null until someone asks. */
  private stepHost: Record<string, number> | null = null;

  /**
   * Records one value logged during the current step (or hook). The value is copied, so the caller
   * may dispose its own tensor; numbers are uploaded as scalars. Call it inside the step's scope:
   * the copy is kept past that scope.
   */
  log(name: string, value: number | tf.Scalar, opts: { onStep: boolean; onEpoch: boolean; progBar: boolean; reduce: LogReduce; batchSize?: number }): void {
    if (!opts.onStep && !opts.onEpoch) return;
    if (!REDUCES.includes(opts.reduce)) throw new ConfigError(`log('${name}').reduce`, REDUCES.map((r) => `'${r}'`).join(' | '), opts.reduce);
    if (opts.batchSize !== undefined && !(opts.batchSize > 0)) throw new ConfigError(`log('${name}').batchSize`, 'a positive number', opts.batchSize);
    const both = opts.onStep && opts.onEpoch;
    if (typeof value !== 'number' && value.size !== 1) throw new ConfigError(`log('${name}')`, 'a number or a scalar tensor', `a tensor of shape [${value.shape.join(', ')}]`);
    // A copy of our own, kept past the step's tidy scope (the tidy frees the intermediates).
    const v = tf.keep(tf.tidy(() => (typeof value === 'number' ? tf.scalar(value) : (tf.cast(tf.reshape(value, []), 'float32') as tf.Scalar))));
    this.pending.push({
      value: v,
      stepKey: opts.onStep ? (both ? `${name}_step` : name) : null,
      epochKey: opts.onEpoch ? (both ? `${name}_epoch` : name) : null,
      reduce: opts.reduce,
      batchSize: opts.batchSize,
      progBar: opts.progBar,
    });
  }

  /**
   * Takes the scalars a step returned (`StepOutput.logs`, already the step's own copies) as logged
   * under `prefix + name`, one key for both the step value (with `onStep`) and the epoch mean: the
   * names `train_loss`, `val_acc` have always had. Without `onEpoch` (a step whose update was
   * dropped) they are step values only.
   */
  adopt(prefix: string, logs: Record<string, tf.Scalar>, onStep: boolean, onEpoch = true): void {
    for (const [k, v] of Object.entries(logs)) {
      this.pending.push({ value: v, stepKey: onStep ? prefix + k : null, epochKey: onEpoch ? prefix + k : null, reduce: 'mean', progBar: false });
    }
  }

  /** Counts commits: a loop compares it to see whether a hook logged anything. */
  get commits(): number {
    return this.commitCount;
  }
  private commitCount = 0;

  /** True when values were logged since the last commit. */
  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Ends a step: its values become the current step values (the previous step's are disposed,
   * unless `keepStep` adds to them, as a hook after the step does) and are folded into the epoch
   * reductions with weight `batchSize`. Device work only; no host read.
   */
  commit(batchSize: number, keepStep = false): void {
    const pending = this.pending;
    this.pending = [];
    this.commitCount++;
    if (!keepStep && pending.some((p) => p.stepKey !== null)) this.clearStep();
    for (const p of pending) {
      if (p.epochKey !== null) this.accumulate(p.epochKey, p.value, p.reduce, p.batchSize ?? batchSize, p.progBar);
      if (p.stepKey !== null) {
        const old = this.step.get(p.stepKey);
        if (old) old.value.dispose();
        this.step.set(p.stepKey, { value: p.value, progBar: p.progBar });
        this.stepHost = null;
      } else {
        p.value.dispose();
      }
    }
  }

  private accumulate(key: string, v: tf.Scalar, reduce: LogReduce, weight: number, progBar: boolean): void {
    const e = this.epoch.get(key);
    if (e && e.reduce !== reduce) throw new ConfigError(`log('${key}').reduce`, `'${e.reduce}' (as it was logged before in this epoch)`, reduce);
    const next = tf.tidy(() => {
      const w = reduce === 'mean' ? tf.mul(v, weight) : v;
      if (!e) return tf.keep(tf.clone(w)) as tf.Scalar;
      if (reduce === 'max') return tf.maximum(e.acc, w) as tf.Scalar;
      if (reduce === 'min') return tf.minimum(e.acc, w) as tf.Scalar;
      return tf.add(e.acc, w) as tf.Scalar;
    });
    if (e) e.acc.dispose();
    this.epoch.set(key, { reduce, acc: next, weight: (e?.weight ?? 0) + weight, progBar });
  }

  /** Keys the current step logged. */
  stepKeys(): string[] {
    return [...this.step.keys()];
  }

  /** Keys with an epoch reduction in progress. */
  epochKeys(): string[] {
    return [...this.epoch.keys()];
  }

  /** Keys logged with `progBar`. */
  progBarKeys(): string[] {
    return [...new Set([...[...this.step].filter(([, s]) => s.progBar).map(([k]) => k), ...[...this.epoch].filter(([, e]) => e.progBar).map(([k]) => k)])];
  }

  /** True when the current step values were already read to the host. */
  get stepRead(): boolean {
    return this.stepHost !== null || this.step.size === 0;
  }

  /** The current step's values as numbers: one asynchronous read, cached until the next commit. */
  async stepValues(): Promise<Record<string, number>> {
    if (this.stepHost) return this.stepHost;
    const keys = [...this.step.keys()];
    const values = keys.length === 0 ? [] : await readAll(keys.map((k) => this.step.get(k)!.value));
    this.stepHost = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    return this.stepHost;
  }

  /**
   * The current step's values read synchronously (cached like `stepValues`), for a callback that
   * reads `trainer.lastTrainMetrics` without having asked for them ahead. Backends without
   * synchronous reads (WebGPU in Node) throw here; such callbacks declare `needsStepMetrics`.
   */
  stepValuesSync(): Record<string, number> {
    if (this.stepHost) return this.stepHost;
    const keys = [...this.step.keys()];
    if (keys.length === 0) return {};
    const stacked = tf.tidy(() => tf.stack(keys.map((k) => this.step.get(k)!.value)));
    try {
      const values = stacked.dataSync();
      this.stepHost = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    } finally {
      stacked.dispose();
    }
    return this.stepHost;
  }

  /** The epoch's reductions as numbers (mean divides by the summed weights): one read. */
  async epochValues(keys: string[] = this.epochKeys()): Promise<Record<string, number>> {
    if (keys.length === 0) return {};
    const values = await readAll(keys.map((k) => this.epoch.get(k)!.acc));
    return Object.fromEntries(keys.map((k, i) => {
      const e = this.epoch.get(k)!;
      return [k, e.reduce === 'mean' ? values[i] / Math.max(e.weight, Number.MIN_VALUE) : values[i]];
    }));
  }

  /** The running reductions read to the host, for a mid-epoch checkpoint. */
  async stateDict(): Promise<Record<string, SavedReduction>> {
    const keys = this.epochKeys();
    const values = keys.length === 0 ? [] : await readAll(keys.map((k) => this.epoch.get(k)!.acc));
    return Object.fromEntries(keys.map((k, i) => [k, { reduce: this.epoch.get(k)!.reduce, acc: values[i], weight: this.epoch.get(k)!.weight }]));
  }

  /** Continues the reductions a checkpoint saved (replacing any in progress). */
  loadStateDict(state: Record<string, SavedReduction>): void {
    this.resetEpoch();
    for (const [k, s] of Object.entries(state)) this.epoch.set(k, { reduce: s.reduce, acc: tf.keep(tf.scalar(s.acc ?? NaN)), weight: s.weight, progBar: false });
  }

  /** Drops the current step's values. */
  clearStep(): void {
    for (const s of this.step.values()) s.value.dispose();
    this.step.clear();
    this.stepHost = null;
  }

  /** Drops the epoch's reductions (the start of a new epoch). */
  resetEpoch(): void {
    for (const e of this.epoch.values()) e.acc.dispose();
    this.epoch.clear();
  }

  /** Frees every tensor held (end of a run). */
  dispose(): void {
    for (const p of this.pending) p.value.dispose();
    this.pending = [];
    this.clearStep();
    this.resetEpoch();
  }
}

/** Reads several scalars with one download: one stacked tensor, one `data()`. */
async function readAll(values: tf.Scalar[]): Promise<number[]> {
  const stacked = tf.tidy(() => tf.stack(values));
  try {
    return Array.from(await stacked.data());
  } finally {
    stacked.dispose();
  }
}

/** Where `log` may be called, the stage its values belong to, and Lightning's defaults there. */
interface LogPlace {
  stage: 'train' | 'validate' | 'test';
  /** Default `onStep` (and `onEpoch` is its opposite). */
  onStep: boolean;
  /** Whether step values make sense here (not in epoch-level hooks). */
  stepAllowed: boolean;
}

const TRAIN_STEP: LogPlace = { stage: 'train', onStep: true, stepAllowed: true };
const TRAIN_EPOCH: LogPlace = { stage: 'train', onStep: false, stepAllowed: false };
// Validation and test values are epoch values only: Kiln's loggers index rows by training step, so
// per-batch validation values would have nowhere to go.
const VAL: LogPlace = { stage: 'validate', onStep: false, stepAllowed: false };
const TEST: LogPlace = { stage: 'test', onStep: false, stepAllowed: false };

/** Lightning's table of where `self.log` is allowed, with its defaults. */
export const LOG_PLACES: Readonly<Record<string, LogPlace>> = {
  trainingStep: TRAIN_STEP,
  onTrainBatchStart: TRAIN_STEP,
  onTrainBatchEnd: TRAIN_STEP,
  onBeforeZeroGrad: TRAIN_STEP,
  onBeforeBackward: TRAIN_STEP,
  onAfterBackward: TRAIN_STEP,
  onBeforeOptimizerStep: TRAIN_STEP,
  onTrainStart: TRAIN_EPOCH,
  onTrainEpochStart: TRAIN_EPOCH,
  onTrainEpochEnd: TRAIN_EPOCH,
  validationStep: VAL,
  onValidationBatchStart: VAL,
  onValidationBatchEnd: VAL,
  onValidationStart: VAL,
  onValidationEpochStart: VAL,
  onValidationEpochEnd: VAL,
  testStep: TEST,
  onTestBatchStart: TEST,
  onTestBatchEnd: TEST,
  onTestStart: TEST,
  onTestEpochStart: TEST,
  onTestEpochEnd: TEST,
};
