import { tf, AcceleratorConnector, ConfigError, DataFormatError, KilnError, defaultRng, manualSeed, type BackendChoice, type RngState } from '@kiln/core';
import { DataLoader, subsetDataset, type LoaderState } from '@kiln/data';
import { GradientAccumulator } from '@kiln/optim';
import { injectable, inject, injectAll } from 'tsyringe';
import type { Callback, Stage } from './callback.js';
import { CallbackList } from './callback-list.js';
import type { Logger } from './logger.js';
import type { OptimizerConfig, StepOutput, TrainingModule } from './training-module.js';
import { CALLBACKS, LOGGERS, TRAINER_OPTIONS } from './tokens.js';
import { CHECKPOINT_FORMAT, checkpointTensors, readCheckpointFrom, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { defaultStorage } from './host/node.js';
import type { Storage } from './storage/storage.js';
import { MetricAverager } from './metric-averager.js';
import { ProgressBar } from './callbacks/progress-bar.js';
import { Monitor } from './callbacks/monitor.js';

/** Options of the {@link Trainer}, named as in PyTorch Lightning's `Trainer`. */
export interface TrainerOptions {
  /** Stop after this many epochs (default 1000 unless maxSteps is set, as in Lightning). */
  maxEpochs?: number;
  /** Stop after this many optimizer steps (-1: no limit). */
  maxSteps?: number;
  /** Keep training at least this many epochs even if a callback asks to stop. */
  minEpochs?: number;
  /** Use only this many training batches per epoch (integer > 1) or this fraction (0..1; 1 = all). */
  limitTrainBatches?: number;
  /** As `limitTrainBatches`, for validation. */
  limitValBatches?: number;
  /** As `limitTrainBatches`, for `test`. */
  limitTestBatches?: number;
  /** Validation batches run before training to catch bugs early (default 2; 0 disables). */
  numSanityValSteps?: number;
  /** Validate every N epochs (default 1). */
  checkValEveryNEpoch?: number;
  /**
   * Validate within the epoch too: a fraction (0.25: four times per epoch) or every N training
   * batches. Validation also runs at the end of every epoch. Default 1.0 (end of epoch only).
   */
  valCheckInterval?: number;
  /**
   * Debugging aid: train (and validate) on the same first N batches (or fraction of batches) of the
   * training set every epoch, unshuffled, to see that the model can overfit them. 0 disables.
   */
  overfitBatches?: number;
  /** Clip gradients: global norm (default algorithm) or value. */
  gradientClipVal?: number;
  /** `norm` (scale all gradients so their global norm is at most `gradientClipVal`) or `value` (clip each element). */
  gradientClipAlgorithm?: 'norm' | 'value';
  /** Sum gradients over this many batches before each optimizer step. */
  accumulateGradBatches?: number;
  /** Seed of the default generator, set at the start of `fit`. */
  seed?: number;
  /**
   * Reproducible runs: seeds the default generator with `seed` (0 when unset). Kiln's CPU/WASM
   * kernels are deterministic already, so this only makes sure a seed is always applied.
   */
  deterministic?: boolean;
  /** Checkpoint to resume `fit` from (also accepted as `fit`'s fourth argument). */
  ckptPath?: string;
  /** Add a terminal ProgressBar when none is registered (default false: the CLI registers its own). */
  enableProgressBar?: boolean;
  /** Run 1 (or n) batch(es) of train/val/test to check the code path, with no logging side effects. */
  fastDevRun?: boolean | number;
  /** Log step-level metrics every N optimizer steps (default 50). */
  logEveryNSteps?: number;
  /**
   * Where checkpoints are written and resumed from (`saveCheckpoint`, `ckptPath`, ModelCheckpoint):
   * default the host's, files in Node and IndexedDB (`kiln` database) in browsers.
   */
  storage?: Storage;
}

type ResolvedOptions = Required<Omit<TrainerOptions, 'seed' | 'gradientClipVal' | 'fastDevRun' | 'ckptPath' | 'storage'>> &
  Pick<TrainerOptions, 'seed' | 'gradientClipVal' | 'fastDevRun' | 'ckptPath'>;

/**
 * Runs fit / validate / test / predict loops over a `TrainingModule`, firing the hooks of its
 * callbacks in the order of docs/hooks.md. Callbacks, loggers and the backend choice are injected;
 * build one with `createTrainer({ accelerator, plugins })` or
 * `new Trainer(options, callbacks, loggers, new AcceleratorConnector(backends, accelerator))`.
 */
@injectable()
export class Trainer {
  /** The options with every default filled in. */
  readonly options: ResolvedOptions;
  /** The run's callbacks, dispatched in order. */
  readonly callbacks: CallbackList;
  /** The run's loggers. */
  readonly loggers: Logger[];
  /** Where this trainer's checkpoints live (the `storage` option, or the host's default). */
  readonly storage: Storage;
  /** Batches per loop in a fastDevRun (0 when not one). */
  private readonly devBatches: number;

  /** Epoch being run (0-based) and optimizer steps taken. */
  currentEpoch = 0;
  /** Optimizer steps taken so far. */
  globalStep = 0;
  /** Set by a callback (EarlyStopping, Timer, TerminateOnNaN) to end `fit` after the current step/epoch. */
  shouldStop = false;
  /** Latest epoch-level metrics: `train_loss`, `val_acc`, … */
  callbackMetrics: Record<string, number> = {};
  /**
   * Names in `callbackMetrics` computed during the current epoch (its training means, its
   * validations). Metric-watching callbacks decide only on these, never on a value left over from
   * an epoch that did not validate.
   */
  freshMetrics = new Set<string>();
  /** True while the running `fit` has a validation loader. */
  validationEnabled = false;
  /** The last training step's logged values (`train_loss`, …) as numbers: read these instead of syncing tensors. */
  lastTrainMetrics: Record<string, number> = {};
  /** Set while a sanity check runs. */
  sanityChecking = false;
  /** Stage being run, null between runs. */
  stage: Stage | null = null;
  /** The first (in automatic optimization, the only) optimizer configuration of the running fit. */
  optimizerConfig?: OptimizerConfig;
  /** Every optimizer configuration `configureOptimizers` returned, in order. */
  optimizerConfigs: OptimizerConfig[] = [];
  /** The module of the current (or last) run. */
  module?: TrainingModule;
  /** Training batches the current epoch will run (after `limitTrainBatches`). */
  numTrainingBatches = 0;
  /** Training batches of the current epoch already run. */
  batchesDone = 0;
  /** True from the end of an epoch's training batches until the next epoch starts. */
  epochTrainingDone = false;
  /** False while gradients of an accumulation window wait to be applied. */
  atOptimizerStepBoundary = true;
  /** Batches per optimizer step now (starts at `accumulateGradBatches`; GradientAccumulationScheduler changes it per epoch). */
  accumulateGradBatches = 1;
  /** Training throughput of the last epoch (examples per second, excluding validation). */
  trainSamplesPerSec = 0;
  /**
   * Set by a callback in `onAfterBackward` (TerminateOnNaN) to drop the current batch's gradients:
   * they are neither accumulated nor applied. Reset after each batch.
   */
  skipOptimizerStep = false;

  private trainLoader?: DataLoader;
  private epochSums = new MetricAverager();
  private resumeBatch = 0;
  private readonly connector: AcceleratorConnector;

  constructor(
    @inject(TRAINER_OPTIONS) options: TrainerOptions = {},
    @injectAll(CALLBACKS, { isOptional: true }) callbacks: Callback[] = [],
    @injectAll(LOGGERS, { isOptional: true }) loggers: Logger[] = [],
    @inject(AcceleratorConnector) connector: AcceleratorConnector = new AcceleratorConnector(),
  ) {
    this.connector = connector ?? new AcceleratorConnector();
    const o = options ?? {};
    const dev = o.fastDevRun === true ? 1 : o.fastDevRun || 0;
    this.devBatches = dev;
    this.options = {
      maxEpochs: dev ? 1 : (o.maxEpochs ?? (o.maxSteps !== undefined && o.maxSteps >= 0 ? -1 : 1000)),
      maxSteps: dev ? dev : (o.maxSteps ?? -1),
      minEpochs: o.minEpochs ?? 0,
      limitTrainBatches: dev || (o.limitTrainBatches ?? 1.0),
      limitValBatches: dev || (o.limitValBatches ?? 1.0),
      limitTestBatches: dev || (o.limitTestBatches ?? 1.0),
      numSanityValSteps: dev ? 0 : (o.numSanityValSteps ?? 2),
      checkValEveryNEpoch: o.checkValEveryNEpoch ?? 1,
      valCheckInterval: o.valCheckInterval ?? 1.0,
      overfitBatches: o.overfitBatches ?? 0,
      gradientClipAlgorithm: o.gradientClipAlgorithm ?? 'norm',
      accumulateGradBatches: o.accumulateGradBatches ?? 1,
      logEveryNSteps: o.logEveryNSteps ?? 50,
      deterministic: o.deterministic ?? false,
      enableProgressBar: o.enableProgressBar ?? false,
      seed: o.seed ?? (o.deterministic ? 0 : undefined),
      gradientClipVal: o.gradientClipVal,
      fastDevRun: o.fastDevRun,
      ckptPath: o.ckptPath,
    };
    this.storage = o.storage ?? defaultStorage();
    this.validateOptions();
    const list = [...(callbacks ?? [])];
    if (this.options.enableProgressBar && !list.some((c) => c instanceof ProgressBar)) list.push(new ProgressBar());
    this.callbacks = new CallbackList(list);
    this.loggers = dev ? [] : (loggers ?? []);
  }

  /**
   * The backend this trainer runs on — its name, what it runs on (`info.device`) and why it was
   * chosen (`reason`) — once `selectAccelerator()` (or the start of a run) has chosen it.
   */
  get accelerator(): BackendChoice | undefined {
    return this.connector.choice;
  }

  /**
   * Starts the run's backend, chosen from the backend plugins registered with the trainer
   * (`createTrainer({ accelerator, plugins })`), and reports the choice (`accelerator`, and one
   * line to the run's `NOTICES`). `fit`, `validate`, `test` and `predict` call it first; call it
   * yourself to build the model on the chosen backend. Later calls return the same choice.
   */
  async selectAccelerator(): Promise<BackendChoice> {
    return this.connector.select();
  }

  private validateOptions(): void {
    const o = this.options;
    const intOrFraction = (name: string, v: number) => {
      if (!(v > 0) || (v > 1 && !Number.isInteger(v))) throw new ConfigError(`Trainer.${name}`, 'a fraction in (0, 1] or a positive integer', v);
    };
    intOrFraction('limitTrainBatches', o.limitTrainBatches);
    intOrFraction('limitValBatches', o.limitValBatches);
    intOrFraction('limitTestBatches', o.limitTestBatches);
    intOrFraction('valCheckInterval', o.valCheckInterval);
    if (o.overfitBatches !== 0) intOrFraction('overfitBatches', o.overfitBatches);
    if (!Number.isInteger(o.accumulateGradBatches) || o.accumulateGradBatches < 1) throw new ConfigError('Trainer.accumulateGradBatches', 'a positive integer', o.accumulateGradBatches);
    if (!Number.isInteger(o.checkValEveryNEpoch) || o.checkValEveryNEpoch < 1) throw new ConfigError('Trainer.checkValEveryNEpoch', 'a positive integer', o.checkValEveryNEpoch);
    if (o.maxEpochs !== -1 && !(Number.isInteger(o.maxEpochs) && o.maxEpochs >= 0)) throw new ConfigError('Trainer.maxEpochs', 'a non-negative integer or -1', o.maxEpochs);
    if (o.gradientClipVal !== undefined && !(o.gradientClipVal > 0)) throw new ConfigError('Trainer.gradientClipVal', 'a positive number', o.gradientClipVal);
  }

  /**
   * Batches to run of a loader with `total`: a fraction when `lim` ≤ 1 (1 meaning all, since JS
   * cannot tell 1 from 1.0), else a count. A fastDevRun of n runs exactly n batches, 1 included.
   */
  private limit(total: number, lim: number): number {
    if (this.devBatches > 0) return Math.min(total, this.devBatches);
    return lim <= 1 && !Number.isInteger(lim) ? Math.max(1, Math.floor(total * lim)) : lim === 1 ? total : Math.min(total, lim);
  }

  private maxStepsReached(): boolean {
    return this.options.maxSteps >= 0 && this.globalStep >= this.options.maxSteps;
  }

  /**
   * Trains `module` on `train`, validating on `val` after each epoch (and within it, with
   * `valCheckInterval`). With `ckptPath` the run continues exactly where that checkpoint stopped:
   * weights, optimizer slots, scheduler, callback state, loader position and random generator.
   */
  async fit(module: TrainingModule, train: DataLoader, val?: DataLoader, ckptPath = this.options.ckptPath): Promise<void> {
    await this.selectAccelerator();
    this.stage = 'fit';
    this.shouldStop = false;
    this.currentEpoch = 0;
    this.globalStep = 0;
    this.callbackMetrics = {};
    this.module = module;
    module.trainer = this;
    this.accumulateGradBatches = this.options.accumulateGradBatches;
    if (this.options.overfitBatches > 0) {
      // A count from 1 up (1 = one batch, as in Lightning), a fraction below 1.
      const ov = this.options.overfitBatches;
      const n = ov >= 1 ? Math.min(train.length, Math.floor(ov)) : Math.max(1, Math.floor(train.length * ov));
      const first = Int32Array.from({ length: Math.min(train.dataset.length, n * train.batchSize) }, (_, i) => i);
      const subset = subsetDataset(train.dataset, first);
      const opts = { batchSize: train.batchSize, exampleShape: train.exampleShape, schema: train.schema };
      train = new DataLoader(subset, opts);
      val = new DataLoader(subset, opts);
    }
    this.trainLoader = train;
    this.validationEnabled = !!val;
    if (this.options.seed !== undefined) {
      manualSeed(this.options.seed);
      // A loader built without its own seed draws its order from the run's seed (a resume then
      // restores the loader's saved generator over this).
      if (!train.seeded) train.manualSeed(this.options.seed);
    }
    const cbs = this.callbacks;
    try {
      await cbs.call('setup', module, this, module, 'fit');
      this.optimizerConfigs = this.configureOptimizers(module);
      this.optimizerConfig = this.optimizerConfigs[0];
      // The generator is restored after the sanity check, so whatever that check draws cannot shift it.
      const rng = ckptPath ? await this.restore(ckptPath, module, train) : undefined;
      // Loggers forget what the interrupted run logged after the checkpoint, so the logs read as one run.
      if (ckptPath) for (const l of this.loggers) await l.onResume?.(this.globalStep, this.resumeBatch > 0);
      await cbs.call('onFitStart', module, this, module);
      for (const l of this.loggers) await l.logHyperparams?.(module.hparams());
      if (val && this.options.numSanityValSteps > 0) {
        this.sanityChecking = true;
        await cbs.call('onSanityCheckStart', module, this, module);
        await this.evaluationLoop(module, val, 'validate', Math.min(val.length, this.options.numSanityValSteps));
        await cbs.call('onSanityCheckEnd', module, this, module);
        this.sanityChecking = false;
      }
      if (rng) defaultRng().setState(rng);
      module.model.train();
      await cbs.call('onTrainStart', module, this, module);
      while (!this.shouldStopFit()) {
        await this.trainEpoch(module, train, val);
        this.currentEpoch++;
      }
      await cbs.call('onTrainEnd', module, this, module);
      await cbs.call('onFitEnd', module, this, module);
      for (const l of this.loggers) await l.finalize?.('success');
    } catch (e) {
      this.sanityChecking = false;
      await cbs.call('onException', module, this, module, e);
      for (const l of this.loggers) await l.finalize?.('failed');
      throw e;
    } finally {
      await cbs.call('teardown', module, this, module, 'fit');
      this.stage = null;
    }
  }

  private shouldStopFit(): boolean {
    const { maxEpochs, minEpochs } = this.options;
    if (this.maxStepsReached()) return true;
    if (maxEpochs !== -1 && this.currentEpoch >= maxEpochs) return true;
    return this.shouldStop && this.currentEpoch >= minEpochs;
  }

  private async trainEpoch(module: TrainingModule, train: DataLoader, val?: DataLoader): Promise<void> {
    const cbs = this.callbacks;
    const cfg = this.optimizerConfig!;
    module.model.train();
    const limit = this.limit(train.length, this.options.limitTrainBatches);
    this.numTrainingBatches = limit;
    const start = this.resumeBatch;
    this.resumeBatch = 0;
    if (start === 0) this.epochSums = new MetricAverager();
    this.batchesDone = start;
    this.epochTrainingDone = false;
    this.freshMetrics = new Set();
    const vci = this.options.valCheckInterval;
    const valEvery = vci <= 1 && !Number.isInteger(vci) ? Math.max(1, Math.floor(limit * vci)) : vci === 1 ? limit : vci;
    const valThisEpoch = !!val && (this.currentEpoch + 1) % this.options.checkValEveryNEpoch === 0;
    await cbs.call('onTrainEpochStart', module, this, module);
    const step = new StepRunner(this, module, cfg, limit);
    let examples = 0;
    const t0 = performance.now();
    // A checkpoint written after the epoch's last batch but before its end (validation, logging,
    // epoch callbacks) resumes here with nothing left to train: the loader only has to move past
    // the epoch, drawing its order (and augmentation seed) as the interrupted run did.
    if (start > 0 && start >= limit) train.skipEpoch();
    // Asynchronous iteration keeps the loader's next batches loading while this step runs.
    const it = train[Symbol.asyncIterator]();
    try {
      for (let batchIdx = start; batchIdx < limit && !this.maxStepsReached(); batchIdx++) {
        const next = await it.next();
        if (next.done) break;
        const batch = next.value;
        let out: StepOutput | undefined;
        try {
          await cbs.call('onTrainBatchStart', module, this, module, batch, batchIdx);
          out = await step.run(batch, batchIdx);
          this.lastTrainMetrics = await this.epochSums.add(out, 'train_');
          examples += out.batchSize;
          this.batchesDone = batchIdx + 1;
          if (this.atOptimizerStepBoundary && this.globalStep % this.options.logEveryNSteps === 0) {
            for (const l of this.loggers) await l.logMetrics({ ...this.lastTrainMetrics, lr: cfg.optimizer.getLr() }, this.globalStep);
          }
          await cbs.call('onTrainBatchEnd', module, this, module, out, batch, batchIdx);
        } finally {
          if (out) tf.dispose(Object.values(out.logs));
          tf.dispose([batch.x, batch.y]);
        }
        if (valThisEpoch && (batchIdx + 1) % valEvery === 0 && batchIdx + 1 < limit && this.atOptimizerStepBoundary) await this.runValidation(module, val!);
        if (this.shouldStop && this.currentEpoch + 1 >= this.options.minEpochs) break;
      }
      // A loader used to its end is asked once more, so it closes its epoch (its state then points at the next one).
      if (this.batchesDone === train.length && start < limit) await it.next();
    } finally {
      step.dispose();
      await it.return?.();
    }
    this.epochTrainingDone = true;
    this.trainSamplesPerSec = examples / ((performance.now() - t0) / 1000);
    const means = this.epochSums.means();
    this.callbackMetrics = { ...this.callbackMetrics, ...means, epoch: this.currentEpoch };
    for (const k of Object.keys(means)) this.freshMetrics.add(k);
    if (valThisEpoch) await this.runValidation(module, val!);
    // The epoch's row is logged before the epoch-end callbacks write checkpoints, so a checkpoint
    // never precedes its own epoch's row (a resume from it neither loses nor repeats the row), and
    // `lr` is the rate this epoch trained with, logged before the epoch schedule steps.
    const row = { ...this.callbackMetrics, epoch: this.currentEpoch, lr: cfg.optimizer.getLr(), train_samples_per_sec: this.trainSamplesPerSec };
    for (const l of this.loggers) await l.logMetrics(row, this.globalStep);
    const hist = this.loggers.filter((l) => l.logHistograms);
    if (hist.length > 0) {
      // One host copy per epoch, only when a logger asked for histograms.
      const named: Record<string, Float32Array> = {};
      for (const [n, p] of module.model.namedParameters()) named[n] = (await p.variable.data()) as Float32Array;
      for (const l of hist) await l.logHistograms!(named, this.globalStep);
    }
    for (const c of this.optimizerConfigs) if (c.scheduler && (c.interval ?? 'epoch') === 'epoch') this.stepScheduler(c, 'epoch');
    await cbs.call('onTrainEpochEnd', module, this, module);
  }

  /** `configureOptimizers`' answer as a list, checked against the module's optimization mode. */
  private configureOptimizers(module: TrainingModule): OptimizerConfig[] {
    const c = module.configureOptimizers();
    const list = Array.isArray(c) ? c : [c];
    if (list.length === 0 || list.some((x) => !x || typeof x.optimizer?.step !== 'function')) {
      throw new ConfigError(`${module.constructor.name}.configureOptimizers()`, 'an { optimizer, scheduler? } configuration, or a list of them', c);
    }
    if (list.length > 1 && module.automaticOptimization) {
      throw new ConfigError(`${module.constructor.name}.configureOptimizers()`, 'one optimizer configuration with automatic optimization', `${list.length} configurations`, 'set automaticOptimization = false and step each optimizer in trainingStep (this.optimizers(), this.manualBackward, this.stepOptimizer)');
    }
    return list;
  }

  /**
   * Steps the configured scheduler. With `OptimizerConfig.monitor` a plateau scheduler gets that
   * metric's value, and at epoch ends only when it was computed this epoch (an epoch that did not
   * validate does not count towards its patience); a metric that will never come is an error
   * naming the metrics that exist.
   * @internal
   */
  stepScheduler(cfg: OptimizerConfig, interval: 'epoch' | 'step'): void {
    const scheduler = cfg.scheduler!;
    if (!cfg.monitor) return scheduler.step(this.callbackMetrics);
    const monitor = new Monitor({ monitor: cfg.monitor }, 'configureOptimizers');
    const value = interval === 'step' ? (this.lastTrainMetrics[cfg.monitor] ?? monitor.read(this, 'the scheduler of configureOptimizers')) : monitor.current(this, 'the scheduler of configureOptimizers');
    if (value !== undefined) scheduler.step(value);
  }

  private async runValidation(module: TrainingModule, val: DataLoader): Promise<void> {
    const m = await this.evaluationLoop(module, val, 'validate', this.limit(val.length, this.options.limitValBatches));
    Object.assign(this.callbackMetrics, m);
    module.model.train();
  }

  /** Runs validation or test batches in eval mode; returns the epoch means (`val_loss`, `test_acc`, …). */
  private async evaluationLoop(module: TrainingModule, loader: DataLoader, stage: 'validate' | 'test', limit: number): Promise<Record<string, number>> {
    const cbs = this.callbacks;
    const V = stage === 'validate' ? 'Validation' : 'Test';
    const prefix = stage === 'validate' ? 'val_' : 'test_';
    const stepFn = stage === 'validate' ? module.validationStep : module.testStep;
    if (!stepFn) throw new KilnError('E_NO_STEP', `${module.constructor.name} has no ${stage === 'validate' ? 'validationStep' : 'testStep'}`, { hint: `implement ${stage === 'validate' ? 'validationStep' : 'testStep'}(batch, batchIdx) on the module` });
    module.model.eval();
    await cbs.call(`on${V}Start` as keyof Callback, module, this, module);
    await cbs.call(`on${V}EpochStart` as keyof Callback, module, this, module);
    const sums = new MetricAverager();
    const it = loader[Symbol.asyncIterator]();
    try {
      for (let i = 0; i < limit; i++) {
        const next = await it.next();
        if (next.done) break;
        const batch = next.value;
        let out: StepOutput | undefined;
        try {
          await cbs.call(`on${V}BatchStart` as keyof Callback, module, this, module, batch, i);
          out = tf.tidy(() => {
            const o = stepFn.call(module, batch, i);
            return { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(v)])) };
          });
          await sums.add(out, prefix);
          await cbs.call(`on${V}BatchEnd` as keyof Callback, module, this, module, out, batch, i);
        } finally {
          if (out) tf.dispose(Object.values(out.logs));
          tf.dispose([batch.x, batch.y]);
        }
      }
    } finally {
      await it.return?.();
    }
    const means = sums.means();
    if (!this.sanityChecking) {
      Object.assign(this.callbackMetrics, means);
      // Before onValidationEnd, so callbacks acting on a mid-epoch validation see its values as current.
      for (const k of Object.keys(means)) this.freshMetrics.add(k);
    }
    await cbs.call(`on${V}EpochEnd` as keyof Callback, module, this, module);
    await cbs.call(`on${V}End` as keyof Callback, module, this, module);
    return means;
  }

  /** Runs the validation loop once, outside `fit`. */
  async validate(module: TrainingModule, loader: DataLoader): Promise<Record<string, number>> {
    return this.runStage(module, 'validate', () => this.evaluationLoop(module, loader, 'validate', this.limit(loader.length, this.options.limitValBatches)));
  }

  /** Runs the test loop; returns `test_loss`, `test_acc`, … */
  async test(module: TrainingModule, loader: DataLoader): Promise<Record<string, number>> {
    return this.runStage(module, 'test', () => this.evaluationLoop(module, loader, 'test', this.limit(loader.length, this.options.limitTestBatches)));
  }

  /** Model outputs for every batch (the caller owns and disposes the tensors). */
  async predict(module: TrainingModule, loader: DataLoader): Promise<tf.Tensor[]> {
    return this.runStage(module, 'predict', async () => {
      const cbs = this.callbacks;
      module.model.eval();
      await cbs.call('onPredictStart', module, this, module);
      await cbs.call('onPredictEpochStart', module, this, module);
      const outs: tf.Tensor[] = [];
      let i = 0;
      // A fastDevRun predicts its n batches only, like the other loops.
      const limit = this.devBatches > 0 ? Math.min(loader.length, this.devBatches) : loader.length;
      for await (const batch of loader) {
        if (i >= limit) {
          tf.dispose([batch.x, batch.y]);
          break;
        }
        try {
          await cbs.call('onPredictBatchStart', module, this, module, batch, i);
          const y = tf.tidy(() => module.predictStep(batch, i));
          outs.push(y);
          await cbs.call('onPredictBatchEnd', module, this, module, y, batch, i);
        } finally {
          tf.dispose([batch.x, batch.y]);
        }
        i++;
      }
      await cbs.call('onPredictEpochEnd', module, this, module);
      await cbs.call('onPredictEnd', module, this, module);
      return outs;
    });
  }

  private async runStage<T>(module: TrainingModule, stage: Stage, body: () => Promise<T>): Promise<T> {
    await this.selectAccelerator();
    const cbs = this.callbacks;
    this.stage = stage;
    this.module = module;
    module.trainer = this;
    try {
      await cbs.call('setup', module, this, module, stage);
      return await body();
    } catch (e) {
      await cbs.call('onException', module, this, module, e);
      throw e;
    } finally {
      await cbs.call('teardown', module, this, module, stage);
      this.stage = null;
    }
  }

  /**
   * Writes a checkpoint of the running `fit` (call it from a hook, as ModelCheckpoint does).
   * Fires `onSaveCheckpoint` with the metadata, which callbacks may extend.
   */
  async saveCheckpoint(file: string): Promise<void> {
    const module = this.module;
    const cfg = this.optimizerConfig;
    if (!module || !cfg || this.stage !== 'fit') throw new KilnError('E_NO_RUN', 'saveCheckpoint needs a running fit', { hint: 'call it from a callback hook during trainer.fit' });
    // Saved after the last batch but before the epoch end ran (everyNSteps), the epoch is not done:
    // the resume re-enters it to validate, log and run the epoch-end callbacks.
    const done = this.epochTrainingDone;
    const optim = cfg.optimizer.stateDict();
    const extra = this.optimizerConfigs.slice(1).map((c) => ({ state: c.optimizer.stateDict(), scheduler: c.scheduler?.stateDict?.() ?? null }));
    const meta: CheckpointMeta = {
      format: CHECKPOINT_FORMAT,
      epoch: done ? this.currentEpoch + 1 : this.currentEpoch,
      batch: done ? 0 : this.batchesDone,
      globalStep: this.globalStep,
      callbackMetrics: { ...this.callbackMetrics },
      epochMetrics: done ? null : this.epochSums.stateDict(),
      optimizer: { step: optim.step, groups: optim.groups },
      scheduler: cfg.scheduler?.stateDict?.() ?? null,
      ...(extra.length > 0 ? { extraOptimizers: extra.map((e) => ({ step: e.state.step, groups: e.state.groups, scheduler: e.scheduler })) } : {}),
      loader: this.trainLoader ? loaderCheckpoint(this.trainLoader, done) : null,
      rng: defaultRng().getState(),
      callbacks: this.callbacks.stateDict(),
      model: { class: module.model.typeName, parameters: module.model.numParameters(), hparams: module.hparams() },
      versions: { checkpoint: String(CHECKPOINT_FORMAT), tfjs: tf.version_core },
    };
    await this.callbacks.call('onSaveCheckpoint', module, this, module, meta);
    await saveCheckpoint(file, { model: module.model.stateDict(), optimizerSlots: optim.slots, extraOptimizerSlots: extra.map((e) => e.state.slots), callbackTensors: this.callbacks.stateTensors(), meta }, this.storage);
  }

  /** Puts a checkpoint's state back; returns the generator state to apply once training starts. */
  private async restore(file: string, module: TrainingModule, train: DataLoader): Promise<RngState | undefined> {
    const ck = await readCheckpointFrom(this.storage, file);
    const cfg = this.optimizerConfig!;
    const { meta } = ck;
    try {
      // Lightning's order: model, then callbacks (which may reshape the optimizer, e.g. add the
      // parameter group BackboneFinetuning unfroze), then optimizer and scheduler.
      module.model.loadStateDict(ck.modelState);
      await this.callbacks.call('onLoadCheckpoint', module, this, module, meta);
      this.callbacks.loadStateDict(meta.callbacks ?? {});
      this.callbacks.loadStateTensors(ck.callbackTensors);
      ck.callbackTensors = {};
      // In a tidy scope: temporaries made while creating slot variables are freed (variables survive tidy).
      if (meta.optimizer) tf.tidy(() => cfg.optimizer.loadStateDict({ ...(meta.optimizer as { step: number; groups: never[] }), slots: ck.optimizerSlots }));
      const saved = meta.extraOptimizers ?? [];
      if (saved.length !== this.optimizerConfigs.length - 1) {
        throw new DataFormatError(file, 'the checkpoint was written with another number of optimizers', { expected: `${this.optimizerConfigs.length} (what configureOptimizers returns now)`, found: `${saved.length + 1}` });
      }
      saved.forEach((o, i) => {
        const c = this.optimizerConfigs[i + 1];
        tf.tidy(() => c.optimizer.loadStateDict({ step: o.step, groups: o.groups as never[], slots: ck.extraOptimizerSlots[i] ?? {} }));
        if (o.scheduler && c.scheduler?.loadStateDict) c.scheduler.loadStateDict(o.scheduler);
      });
    } finally {
      tf.dispose(checkpointTensors(ck));
    }
    if (meta.scheduler && cfg.scheduler?.loadStateDict) cfg.scheduler.loadStateDict(meta.scheduler);
    if (meta.loader) restoreLoader(train, meta.loader as SavedLoader);
    this.currentEpoch = meta.epoch;
    this.globalStep = meta.globalStep;
    this.resumeBatch = meta.batch;
    this.callbackMetrics = { ...meta.callbackMetrics };
    if (meta.epochMetrics) this.epochSums = MetricAverager.fromState(meta.epochMetrics);
    return meta.rng as RngState | undefined;
  }
}

/** A loader's position as checkpointed; `replay` marks an epoch that ended before the loader ran out. */
interface SavedLoader {
  state: LoaderState;
  replay: boolean;
}

/**
 * The loader's position for a checkpoint. Mid-epoch, its own state resumes at the next batch. At
 * an epoch end the loader has either run out (its state already points at the next epoch) or was
 * cut short by limitTrainBatches/maxSteps: then the next epoch starts from the generator as that
 * epoch's start left it, which `restoreLoader` reproduces by starting the epoch once more.
 */
function loaderCheckpoint(loader: DataLoader, epochDone: boolean): SavedLoader {
  const state = loader.stateDict();
  return epochDone && state.position !== 0 ? { state: { ...state, position: 0 }, replay: true } : { state, replay: false };
}

function restoreLoader(loader: DataLoader, saved: SavedLoader): void {
  loader.loadStateDict(saved.state);
  // The cut-short epoch's draws (order, augmentation seed) are replayed without reading any example.
  if (saved.replay) loader.skipEpoch();
}

/**
 * One training step: forward and backward in one `tf.variableGrads` call (tfjs records and
 * differentiates in a single tape), accumulation, clipping, the optimizer step and step-interval
 * schedules. `onBeforeZeroGrad` and `onBeforeBackward` fire synchronously inside the tape, after
 * the forward pass, because tfjs offers no point between recording and differentiating.
 * Accumulation is `@kiln/optim`'s GradientAccumulator: the step applies the mean of the gradients
 * of the batches in its window, also for a last window cut short by the epoch's end.
 */
class StepRunner {
  private accumulator: GradientAccumulator | null = null;

  constructor(
    private readonly trainer: Trainer,
    private readonly module: TrainingModule,
    private readonly cfg: OptimizerConfig,
    private readonly limit: number,
  ) {}

  async run(batch: Parameters<TrainingModule['trainingStep']>[0], batchIdx: number): Promise<StepOutput> {
    if (!this.module.automaticOptimization) return this.runManual(batch, batchIdx);
    const { trainer, module, cfg } = this;
    const cbs = trainer.callbacks;
    const accumulate = trainer.accumulateGradBatches;
    const pending = this.accumulator?.count ?? 0;
    let kept: StepOutput | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const o = module.trainingStep(batch, batchIdx);
      if (o instanceof Promise) throw new KilnError('E_ASYNC_STEP', `${module.constructor.name}.trainingStep returned a promise`, { hint: 'an async trainingStep needs automaticOptimization = false (the automatic loop records it under the gradient tape, which cannot wait)' });
      if (!o.loss) throw new KilnError('E_NO_LOSS', 'trainingStep returned no loss', { where: `${module.constructor.name}.trainingStep`, hint: 'return { loss, logs, batchSize }' });
      kept = { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(tf.clone(v))])) };
      let loss = o.loss;
      const penalty = regularization(module);
      if (penalty) loss = tf.add(loss, penalty) as tf.Scalar;
      cbs.callSync('onBeforeZeroGrad', module, trainer, module);
      if (pending === 0) cfg.optimizer.zeroGrad();
      cbs.callSync('onBeforeBackward', module, trainer, module, loss);
      return loss;
    }, module.model.trainableVariables());
    value.dispose();
    try {
      await cbs.call('onAfterBackward', module, trainer, module, grads);
    } catch (e) {
      tf.dispose(Object.values(grads));
      tf.dispose(Object.values(kept!.logs));
      trainer.skipOptimizerStep = false;
      throw e;
    }
    if (trainer.skipOptimizerStep) {
      trainer.skipOptimizerStep = false;
      tf.dispose(Object.values(grads));
      return kept!;
    }
    const windowEnds = pending + 1 >= accumulate || batchIdx + 1 === this.limit;
    let acc: tf.NamedTensorMap;
    if (pending === 0 && windowEnds) {
      // No accumulation in progress: the batch's gradients are the step's, without a copy.
      acc = grads;
    } else {
      this.accumulator ??= new GradientAccumulator({ steps: accumulate });
      this.accumulator.add(grads);
      tf.dispose(Object.values(grads));
      trainer.atOptimizerStepBoundary = false;
      if (!windowEnds) return kept!;
      acc = this.accumulator.take();
    }
    try {
      await cbs.call('onBeforeOptimizerStep', module, trainer, module, acc);
      const clipped = module.configureGradientClipping(acc, trainer.options.gradientClipVal, trainer.options.gradientClipAlgorithm);
      try {
        module.optimizerStep(cfg.optimizer, clipped);
      } finally {
        if (clipped !== acc) tf.dispose(Object.values(clipped));
      }
    } finally {
      tf.dispose(Object.values(acc));
    }
    trainer.globalStep++;
    trainer.atOptimizerStepBoundary = true;
    if (cfg.scheduler && cfg.interval === 'step') trainer.stepScheduler(cfg, 'step');
    return kept!;
  }

  /**
   * Manual optimization: the module's (possibly async) `trainingStep` computes gradients and steps
   * its optimizers itself. It runs in an engine scope, so its temporaries are freed like a tidy's;
   * only the logged scalars are kept. Nothing else creates tensors while it runs: the loader reads
   * ahead as plain arrays and makes a batch's tensors only when it hands the batch out.
   */
  private async runManual(batch: Parameters<TrainingModule['trainingStep']>[0], batchIdx: number): Promise<StepOutput> {
    const { trainer, module } = this;
    if (trainer.accumulateGradBatches > 1) throw new ConfigError('Trainer.accumulateGradBatches', '1 with manual optimization (accumulate in trainingStep)', trainer.accumulateGradBatches);
    let out: StepOutput;
    tf.engine().startScope();
    try {
      const o = await module.trainingStep(batch, batchIdx);
      out = { ...o, loss: undefined, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(tf.clone(v))])) };
    } finally {
      tf.engine().endScope();
      trainer.skipOptimizerStep = false;
    }
    trainer.globalStep++;
    trainer.atOptimizerStepBoundary = true;
    for (const c of trainer.optimizerConfigs) if (c.scheduler && c.interval === 'step') trainer.stepScheduler(c, 'step');
    return out;
  }

  dispose(): void {
    this.accumulator?.reset();
    this.accumulator = null;
    this.trainer.atOptimizerStepBoundary = true;
  }
}

/** Sum of every parameter regularizer's penalty, or null when there are none. */
function regularization(module: TrainingModule): tf.Scalar | null {
  let total: tf.Scalar | null = null;
  for (const p of module.model.parameters()) {
    if (!p.regularizer || !p.trainable) continue;
    const pen = p.regularizer.penalty(p.variable);
    total = total ? (tf.add(total, pen) as tf.Scalar) : pen;
  }
  return total;
}
