import { tf, AcceleratorConnector, ConfigError, KilnError, type BackendChoice } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import { injectable, inject, injectAll } from 'tsyringe';
import type { Callback, Stage } from './callback.js';
import { CallbackList } from './callback-list.js';
import type { Logger } from './logger.js';
import type { OptimizerConfig, TrainingModule } from './training-module.js';
import { CALLBACKS, LOGGERS, TRAINER_OPTIONS } from './tokens.js';
import { ProgressBar } from './callbacks/progress-bar.js';
import { Monitor } from './callbacks/monitor.js';
import { CheckpointConnector } from './checkpoint-connector.js';
import { defaultStorage } from './host/node.js';
import type { Storage } from './storage/storage.js';
import { FitLoop } from './loops/fit-loop.js';
import { evaluationLoop } from './loops/evaluation-loop.js';
import { predictionLoop } from './loops/prediction-loop.js';
import { LOG_PLACES, type LogOptions, type ResultCollection } from './result-collection.js';

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
 *
 * The Trainer is the facade and the run's state; the loops live in `loops/` (fit, training epoch
 * with its optimization step, evaluation, prediction) and checkpoint save/restore in the
 * `CheckpointConnector`.
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
  /**
   * Batches per loop in a fastDevRun (0 when not one).
   * @internal
   */
  readonly devBatches: number;

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
  /**
   * The last training step's logged values (`train_loss`, `name` / `name_step` of `this.log`) as
   * numbers. They stay on the device until read: in steps where a logger logs or a callback's
   * `needsStepMetrics` asked, the trainer has read them already (one asynchronous read); otherwise
   * the first access reads them synchronously (backends without synchronous readback refuse it:
   * declare `needsStepMetrics` there).
   */
  get lastTrainMetrics(): Record<string, number> {
    return this.stepOverride ?? this.fitLoop.epochLoop.results.stepValuesSync();
  }
  /** Replaces the values callbacks read until the next step commits its own (for tests and tools driving hooks by hand). */
  set lastTrainMetrics(values: Record<string, number>) {
    this.stepOverride = values;
  }
  /**
   * Values assigned to `lastTrainMetrics` by hand, until the next step commits its own.
   * @internal
   */
  stepOverride: Record<string, number> | null = null;

  /**
   * Values logged with `progBar: true`: the last step's (read now if nobody read them) and the
   * epoch values in `callbackMetrics`.
   */
  get progressBarMetrics(): Record<string, number> {
    const keys = this.fitLoop.epochLoop.results.progBarKeys();
    if (keys.length === 0) return {};
    const step = this.lastTrainMetrics;
    const out: Record<string, number> = {};
    for (const k of keys) {
      const v = step[k] ?? this.callbackMetrics[k];
      if (v !== undefined) out[k] = v;
    }
    return out;
  }

  /**
   * The results of the validation or test loop running now.
   * @internal
   */
  evalResults: ResultCollection | null = null;
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

  /**
   * The fit loop (and through it the training epoch loop) of this trainer.
   * @internal
   */
  readonly fitLoop: FitLoop = new FitLoop(this);
  /**
   * Saves and restores checkpoints of the running fit.
   * @internal
   */
  readonly checkpointConnector: CheckpointConnector = new CheckpointConnector(this);
  private readonly acceleratorConnector: AcceleratorConnector;

  constructor(
    @inject(TRAINER_OPTIONS) options: TrainerOptions = {},
    @injectAll(CALLBACKS, { isOptional: true }) callbacks: Callback[] = [],
    @injectAll(LOGGERS, { isOptional: true }) loggers: Logger[] = [],
    @inject(AcceleratorConnector) connector: AcceleratorConnector = new AcceleratorConnector(),
  ) {
    this.acceleratorConnector = connector ?? new AcceleratorConnector();
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
    this.callbacks.afterModuleHook = (hook) => this.commitHookLogs(hook);
    this.loggers = dev ? [] : (loggers ?? []);
  }

  /**
   * The backend this trainer runs on — its name, what it runs on (`info.device`) and why it was
   * chosen (`reason`) — once `selectAccelerator()` (or the start of a run) has chosen it.
   */
  get accelerator(): BackendChoice | undefined {
    return this.acceleratorConnector.choice;
  }

  /**
   * Starts the run's backend, chosen from the backend plugins registered with the trainer
   * (`createTrainer({ accelerator, plugins })`), and reports the choice (`accelerator`, and one
   * line to the run's `NOTICES`). `fit`, `validate`, `test` and `predict` call it first; call it
   * yourself to build the model on the chosen backend. Later calls return the same choice.
   */
  async selectAccelerator(): Promise<BackendChoice> {
    return this.acceleratorConnector.select();
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
   * @internal
   */
  batchLimit(total: number, lim: number): number {
    if (this.devBatches > 0) return Math.min(total, this.devBatches);
    return lim <= 1 && !Number.isInteger(lim) ? Math.max(1, Math.floor(total * lim)) : lim === 1 ? total : Math.min(total, lim);
  }

  /**
   * True once `maxSteps` optimizer steps are taken.
   * @internal
   */
  maxStepsReached(): boolean {
    return this.options.maxSteps >= 0 && this.globalStep >= this.options.maxSteps;
  }

  /**
   * Trains `module` on `train`, validating on `val` after each epoch (and within it, with
   * `valCheckInterval`). With `ckptPath` the run continues exactly where that checkpoint stopped:
   * weights, optimizer slots, scheduler, callback state, loader position and random generator.
   */
  async fit(module: TrainingModule, train: DataLoader, val?: DataLoader, ckptPath = this.options.ckptPath): Promise<void> {
    await this.selectAccelerator();
    return this.fitLoop.run(module, train, val, ckptPath);
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

  /**
   * `TrainingModule.log`'s work: finds where it is called from (a step or hook, as Lightning's
   * table allows), fills in that place's defaults and records the value in the running stage's
   * results, on the device.
   * @internal
   */
  recordLog(owner: string, name: string, value: number | tf.Scalar, options: LogOptions): void {
    const where = this.callbacks.running[this.callbacks.running.length - 1];
    const place = where ? LOG_PLACES[where] : undefined;
    const results = !place ? null : place.stage === 'train' ? (this.stage === 'fit' ? this.fitLoop.epochLoop.results : null) : this.evalResults;
    if (!place || !results) {
      throw new KilnError('E_LOG_PLACE', `${owner}.log('${name}') was called ${where ? `in ${where}` : 'outside any step or hook of a running trainer'}`, {
        expected: 'trainingStep, validationStep, testStep, or one of their batch or epoch hooks',
        hint: 'log from a step or hook while trainer.fit / validate / test runs',
      });
    }
    const onStep = options.onStep ?? place.onStep;
    if (onStep && !place.stepAllowed) throw new ConfigError(`${owner}.log('${name}').onStep`, `false in ${where} (step values come from training steps and their batch hooks)`, true);
    results.log(name, value, { onStep, onEpoch: options.onEpoch ?? !place.onStep, progBar: options.progBar ?? false, reduce: options.reduce ?? 'mean', batchSize: options.batchSize });
  }

  /**
   * After the module's place in an epoch-level hook (`onTrainEpochStart`, `onValidationEpochEnd`,
   * …): what the hook logged joins the epoch's reductions (weight 1). At `onTrainEpochEnd` those
   * values are also published, before the monitoring callbacks run. Values logged in batch hooks
   * are committed by the loop with the batch.
   */
  private async commitHookLogs(hook: keyof Callback): Promise<void> {
    const place = LOG_PLACES[hook];
    if (!place || place.stepAllowed || hook.includes('Batch')) return;
    const results = place.stage === 'train' ? this.fitLoop.epochLoop.results : this.evalResults;
    if (!results?.hasPending) return;
    results.commit(1);
    if (hook === 'onTrainEpochEnd') await this.fitLoop.epochLoop.publishLateValues();
  }

  /** Runs the validation loop once, outside `fit`. */
  async validate(module: TrainingModule, loader: DataLoader): Promise<Record<string, number>> {
    return this.runStage(module, 'validate', () => evaluationLoop(this, module, loader, 'validate', this.batchLimit(loader.length, this.options.limitValBatches)));
  }

  /** Runs the test loop; returns `test_loss`, `test_acc`, … */
  async test(module: TrainingModule, loader: DataLoader): Promise<Record<string, number>> {
    return this.runStage(module, 'test', () => evaluationLoop(this, module, loader, 'test', this.batchLimit(loader.length, this.options.limitTestBatches)));
  }

  /** Model outputs for every batch (the caller owns and disposes the tensors). */
  async predict(module: TrainingModule, loader: DataLoader): Promise<tf.Tensor[]> {
    return this.runStage(module, 'predict', () => predictionLoop(this, module, loader));
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
    return this.checkpointConnector.save(file);
  }
}
