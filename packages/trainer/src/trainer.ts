import { tf, ConfigError, KilnError, defaultRng, manualSeed, type RngState } from '@kiln/core';
import { DataLoader, subsetDataset, type LoaderState } from '@kiln/data';
import { injectable, inject, injectAll } from 'tsyringe';
import type { Callback, Stage } from './callback.js';
import { CallbackList } from './callback-list.js';
import type { Logger } from './logger.js';
import type { OptimizerConfig, StepOutput, TrainingModule } from './training-module.js';
import { CALLBACKS, LOGGERS, TRAINER_OPTIONS } from './tokens.js';
import { clipGradients } from './clip.js';
import { CHECKPOINT_FORMAT, readCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { MetricAverager } from './metric-averager.js';
import { ProgressBar } from './callbacks/progress-bar.js';

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
}

type ResolvedOptions = Required<Omit<TrainerOptions, 'seed' | 'gradientClipVal' | 'fastDevRun' | 'ckptPath'>> &
  Pick<TrainerOptions, 'seed' | 'gradientClipVal' | 'fastDevRun' | 'ckptPath'>;

/**
 * Runs fit / validate / test / predict loops over a `TrainingModule`, firing the hooks of its
 * callbacks in the order of docs/hooks.md. Callbacks and loggers are injected; build one with
 * `createTrainer({ ... })` or `new Trainer(options, callbacks, loggers)`.
 */
@injectable()
export class Trainer {
  /** The options with every default filled in. */
  readonly options: ResolvedOptions;
  /** The run's callbacks, dispatched in order. */
  readonly callbacks: CallbackList;
  /** The run's loggers. */
  readonly loggers: Logger[];
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
  /** The last training step's logged values (`train_loss`, …) as numbers: read these instead of syncing tensors. */
  lastTrainMetrics: Record<string, number> = {};
  /** Set while a sanity check runs. */
  sanityChecking = false;
  /** Stage being run, null between runs. */
  stage: Stage | null = null;
  /** What the module's `configureOptimizers` returned for the current run. */
  optimizerConfig?: OptimizerConfig;
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

  private trainLoader?: DataLoader;
  private epochSums = new MetricAverager();
  private resumeBatch = 0;

  constructor(
    @inject(TRAINER_OPTIONS) options: TrainerOptions = {},
    @injectAll(CALLBACKS, { isOptional: true }) callbacks: Callback[] = [],
    @injectAll(LOGGERS, { isOptional: true }) loggers: Logger[] = [],
  ) {
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
    this.validateOptions();
    const list = [...(callbacks ?? [])];
    if (this.options.enableProgressBar && !list.some((c) => c instanceof ProgressBar)) list.push(new ProgressBar());
    this.callbacks = new CallbackList(list);
    this.loggers = dev ? [] : (loggers ?? []);
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
    this.stage = 'fit';
    this.shouldStop = false;
    this.currentEpoch = 0;
    this.globalStep = 0;
    this.callbackMetrics = {};
    this.module = module;
    this.accumulateGradBatches = this.options.accumulateGradBatches;
    if (this.options.overfitBatches > 0) {
      const n = this.limit(train.length, this.options.overfitBatches);
      const first = Int32Array.from({ length: Math.min(train.dataset.length, n * train.batchSize) }, (_, i) => i);
      const subset = subsetDataset(train.dataset, first);
      const opts = { batchSize: train.batchSize, exampleShape: train.exampleShape };
      train = new DataLoader(subset, opts);
      val = new DataLoader(subset, opts);
    }
    this.trainLoader = train;
    if (this.options.seed !== undefined) manualSeed(this.options.seed);
    const cbs = this.callbacks;
    try {
      await cbs.call('setup', module, this, module, 'fit');
      this.optimizerConfig = module.configureOptimizers();
      // The generator is restored after the sanity check, so whatever that check draws cannot shift it.
      const rng = ckptPath ? await this.restore(ckptPath, module, train) : undefined;
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
    const vci = this.options.valCheckInterval;
    const valEvery = vci <= 1 && !Number.isInteger(vci) ? Math.max(1, Math.floor(limit * vci)) : vci === 1 ? limit : vci;
    const valThisEpoch = !!val && (this.currentEpoch + 1) % this.options.checkValEveryNEpoch === 0;
    await cbs.call('onTrainEpochStart', module, this, module);
    const step = new StepRunner(this, module, cfg, limit);
    let examples = 0;
    const t0 = performance.now();
    const it = train[Symbol.iterator]();
    try {
      for (let batchIdx = start; batchIdx < limit && !this.maxStepsReached(); batchIdx++) {
        const next = it.next();
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
      if (this.batchesDone === train.length) it.next();
    } finally {
      step.dispose();
      it.return?.();
    }
    this.epochTrainingDone = true;
    this.trainSamplesPerSec = examples / ((performance.now() - t0) / 1000);
    this.callbackMetrics = { ...this.callbackMetrics, ...this.epochSums.means(), epoch: this.currentEpoch };
    if (valThisEpoch) await this.runValidation(module, val!);
    if (cfg.scheduler && (cfg.interval ?? 'epoch') === 'epoch') cfg.scheduler.step(this.callbackMetrics);
    await cbs.call('onTrainEpochEnd', module, this, module);
    const row = { ...this.callbackMetrics, epoch: this.currentEpoch, lr: cfg.optimizer.getLr(), train_samples_per_sec: this.trainSamplesPerSec };
    for (const l of this.loggers) await l.logMetrics(row, this.globalStep);
    const hist = this.loggers.filter((l) => l.logHistograms);
    if (hist.length > 0) {
      // One host copy per epoch, only when a logger asked for histograms.
      const named: Record<string, Float32Array> = {};
      for (const [n, p] of module.model.namedParameters()) named[n] = (await p.variable.data()) as Float32Array;
      for (const l of hist) await l.logHistograms!(named, this.globalStep);
    }
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
    const it = loader[Symbol.iterator]();
    try {
      for (let i = 0; i < limit; i++) {
        const next = it.next();
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
      it.return?.();
    }
    const means = sums.means();
    if (!this.sanityChecking) Object.assign(this.callbackMetrics, means);
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
      for (const batch of loader) {
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
    const cbs = this.callbacks;
    this.stage = stage;
    this.module = module;
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
    const done = this.epochTrainingDone || this.batchesDone >= this.numTrainingBatches;
    const optim = cfg.optimizer.stateDict();
    const meta: CheckpointMeta = {
      format: CHECKPOINT_FORMAT,
      epoch: done ? this.currentEpoch + 1 : this.currentEpoch,
      batch: done ? 0 : this.batchesDone,
      globalStep: this.globalStep,
      callbackMetrics: { ...this.callbackMetrics },
      epochMetrics: done ? null : this.epochSums.stateDict(),
      optimizer: { step: optim.step, groups: optim.groups },
      scheduler: cfg.scheduler?.stateDict?.() ?? null,
      loader: this.trainLoader ? loaderCheckpoint(this.trainLoader, done) : null,
      rng: defaultRng().getState(),
      callbacks: this.callbacks.stateDict(),
      model: { class: module.model.typeName, parameters: module.model.numParameters(), hparams: module.hparams() },
      versions: { checkpoint: String(CHECKPOINT_FORMAT), tfjs: tf.version_core },
    };
    await this.callbacks.call('onSaveCheckpoint', module, this, module, meta);
    await saveCheckpoint(file, { model: module.model.stateDict(), optimizerSlots: optim.slots, meta });
  }

  /** Puts a checkpoint's state back; returns the generator state to apply once training starts. */
  private async restore(file: string, module: TrainingModule, train: DataLoader): Promise<RngState | undefined> {
    const ck = readCheckpoint(file);
    const cfg = this.optimizerConfig!;
    const { meta } = ck;
    try {
      // Lightning's order: model, then callbacks (which may reshape the optimizer, e.g. add the
      // parameter group BackboneFinetuning unfroze), then optimizer and scheduler.
      module.model.loadStateDict(ck.modelState);
      await this.callbacks.call('onLoadCheckpoint', module, this, module, meta);
      this.callbacks.loadStateDict(meta.callbacks ?? {});
      // In a tidy scope: temporaries made while creating slot variables are freed (variables survive tidy).
      if (meta.optimizer) tf.tidy(() => cfg.optimizer.loadStateDict({ ...(meta.optimizer as { step: number; groups: never[] }), slots: ck.optimizerSlots }));
    } finally {
      tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
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
  if (!saved.replay) return;
  // Starting an epoch draws its order (and augmentation seed) from the generator; the batch is discarded.
  const it = loader[Symbol.iterator]();
  const first = it.next();
  if (!first.done) tf.dispose([first.value.x, first.value.y]);
  it.return?.();
}

/**
 * One training step: forward and backward in one `tf.variableGrads` call (tfjs records and
 * differentiates in a single tape), accumulation, clipping, the optimizer step and step-interval
 * schedules. `onBeforeZeroGrad` and `onBeforeBackward` fire synchronously inside the tape, after
 * the forward pass, because tfjs offers no point between recording and differentiating.
 */
class StepRunner {
  private accumulated: tf.NamedTensorMap | null = null;
  private pending = 0;

  constructor(
    private readonly trainer: Trainer,
    private readonly module: TrainingModule,
    private readonly cfg: OptimizerConfig,
    private readonly limit: number,
  ) {}

  async run(batch: Parameters<TrainingModule['trainingStep']>[0], batchIdx: number): Promise<StepOutput> {
    const { trainer, module, cfg } = this;
    const cbs = trainer.callbacks;
    const accumulate = trainer.accumulateGradBatches;
    let kept: StepOutput | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const o = module.trainingStep(batch, batchIdx);
      if (!o.loss) throw new KilnError('E_NO_LOSS', 'trainingStep returned no loss', { where: `${module.constructor.name}.trainingStep`, hint: 'return { loss, logs, batchSize }' });
      kept = { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(tf.clone(v))])) };
      let loss = o.loss;
      const penalty = regularization(module);
      if (penalty) loss = tf.add(loss, penalty) as tf.Scalar;
      if (accumulate > 1) loss = tf.div(loss, accumulate) as tf.Scalar;
      cbs.callSync('onBeforeZeroGrad', module, trainer, module);
      if (this.pending === 0) cfg.optimizer.zeroGrad();
      cbs.callSync('onBeforeBackward', module, trainer, module, loss);
      return loss;
    }, module.model.trainableVariables());
    value.dispose();
    try {
      await cbs.call('onAfterBackward', module, trainer, module, grads);
    } catch (e) {
      tf.dispose(Object.values(grads));
      tf.dispose(Object.values(kept!.logs));
      throw e;
    }
    this.accumulated = this.accumulated ? addGrads(this.accumulated, grads) : grads;
    this.pending++;
    trainer.atOptimizerStepBoundary = false;
    if (this.pending === accumulate || batchIdx + 1 === this.limit) {
      const acc = this.accumulated;
      try {
        await cbs.call('onBeforeOptimizerStep', module, trainer, module, acc);
        const clip = trainer.options.gradientClipVal;
        const clipped = clip !== undefined ? clipGradients(acc, clip, trainer.options.gradientClipAlgorithm) : acc;
        cfg.optimizer.step(clipped);
        if (clipped !== acc) tf.dispose(Object.values(clipped));
      } finally {
        tf.dispose(Object.values(acc));
        this.accumulated = null;
        this.pending = 0;
      }
      trainer.globalStep++;
      trainer.atOptimizerStepBoundary = true;
      if (cfg.scheduler && cfg.interval === 'step') cfg.scheduler.step(trainer.callbackMetrics);
    }
    return kept!;
  }

  dispose(): void {
    if (this.accumulated) tf.dispose(Object.values(this.accumulated));
    this.accumulated = null;
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

function addGrads(a: tf.NamedTensorMap, b: tf.NamedTensorMap): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const k of Object.keys(a)) out[k] = b[k] ? tf.add(a[k], b[k]) : tf.clone(a[k]);
  for (const k of Object.keys(b)) if (!a[k]) out[k] = tf.clone(b[k]);
  tf.dispose([...Object.values(a), ...Object.values(b)]);
  return out;
}
