import { tf, ConfigError, KilnError, manualSeed } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import { injectable, inject, injectAll } from 'tsyringe';
import type { Callback, Stage } from './callback.js';
import { CallbackList } from './callback-list.js';
import type { Logger } from './logger.js';
import type { OptimizerConfig, StepOutput, TrainingModule } from './training-module.js';
import { CALLBACKS, LOGGERS, TRAINER_OPTIONS } from './tokens.js';
import { clipGradients } from './clip.js';

export interface TrainerOptions {
  /** Stop after this many epochs (default 1000 unless maxSteps is set, as in Lightning). */
  maxEpochs?: number;
  /** Stop after this many optimizer steps (-1: no limit). */
  maxSteps?: number;
  /** Keep training at least this many epochs even if a callback asks to stop. */
  minEpochs?: number;
  /** Use only this many training batches per epoch (integer) or this fraction (0..1]. */
  limitTrainBatches?: number;
  limitValBatches?: number;
  limitTestBatches?: number;
  /** Validation batches run before training to catch bugs early (default 2; 0 disables). */
  numSanityValSteps?: number;
  /** Validate every N epochs (default 1). */
  checkValEveryNEpoch?: number;
  /** Clip gradients: global norm (default algorithm) or value. */
  gradientClipVal?: number;
  gradientClipAlgorithm?: 'norm' | 'value';
  /** Sum gradients over this many batches before each optimizer step. */
  accumulateGradBatches?: number;
  /** Seed of the default generator, set at the start of `fit`. */
  seed?: number;
  /** Run 1 (or n) batch(es) of train/val/test to check the code path, with no logging side effects. */
  fastDevRun?: boolean | number;
  /** Log step-level metrics every N optimizer steps (default 50). */
  logEveryNSteps?: number;
}

/** Snapshot of where a fit is. */
export interface Progress {
  epoch: number;
  globalStep: number;
  batchIdx: number;
}

/**
 * Runs fit / validate / test / predict loops over a `TrainingModule`, firing the hooks of its
 * callbacks in Lightning's order. Callbacks and loggers are injected; build one with
 * `createTrainer({ ... })` or `new Trainer(options, callbacks, loggers)`.
 */
@injectable()
export class Trainer {
  readonly options: Required<Omit<TrainerOptions, 'seed' | 'gradientClipVal' | 'fastDevRun'>> & Pick<TrainerOptions, 'seed' | 'gradientClipVal' | 'fastDevRun'>;
  readonly callbacks: CallbackList;
  readonly loggers: Logger[];

  /** Epoch being run (0-based) and optimizer steps taken. */
  currentEpoch = 0;
  globalStep = 0;
  /** Set by a callback (EarlyStopping, Timer, TerminateOnNaN) to end `fit` after the current step/epoch. */
  shouldStop = false;
  /** Latest epoch-level metrics: `train_loss`, `val_acc`, … */
  callbackMetrics: Record<string, number> = {};
  /** Set while a sanity check runs. */
  sanityChecking = false;
  /** Set during `fit`. */
  stage: Stage | null = null;
  optimizerConfig?: OptimizerConfig;
  /** Training batches the current epoch will run (after `limitTrainBatches`). */
  numTrainingBatches = 0;
  /** Training throughput of the last epoch (examples per second, excluding validation). */
  trainSamplesPerSec = 0;

  constructor(
    @inject(TRAINER_OPTIONS) options: TrainerOptions = {},
    @injectAll(CALLBACKS, { isOptional: true }) callbacks: Callback[] = [],
    @injectAll(LOGGERS, { isOptional: true }) loggers: Logger[] = [],
  ) {
    const o = options ?? {};
    const dev = o.fastDevRun === true ? 1 : o.fastDevRun || 0;
    this.options = {
      maxEpochs: dev ? 1 : (o.maxEpochs ?? (o.maxSteps !== undefined && o.maxSteps >= 0 ? -1 : 1000)),
      maxSteps: dev ? dev : (o.maxSteps ?? -1),
      minEpochs: o.minEpochs ?? 0,
      limitTrainBatches: dev || (o.limitTrainBatches ?? 1.0),
      limitValBatches: dev || (o.limitValBatches ?? 1.0),
      limitTestBatches: dev || (o.limitTestBatches ?? 1.0),
      numSanityValSteps: dev ? 0 : (o.numSanityValSteps ?? 2),
      checkValEveryNEpoch: o.checkValEveryNEpoch ?? 1,
      gradientClipAlgorithm: o.gradientClipAlgorithm ?? 'norm',
      accumulateGradBatches: o.accumulateGradBatches ?? 1,
      logEveryNSteps: o.logEveryNSteps ?? 50,
      seed: o.seed,
      gradientClipVal: o.gradientClipVal,
      fastDevRun: o.fastDevRun,
    };
    this.validateOptions();
    this.callbacks = new CallbackList(callbacks ?? []);
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
    if (!Number.isInteger(o.accumulateGradBatches) || o.accumulateGradBatches < 1) throw new ConfigError('Trainer.accumulateGradBatches', 'a positive integer', o.accumulateGradBatches);
    if (o.maxEpochs !== -1 && !(Number.isInteger(o.maxEpochs) && o.maxEpochs >= 0)) throw new ConfigError('Trainer.maxEpochs', 'a non-negative integer or -1', o.maxEpochs);
    if (o.gradientClipVal !== undefined && !(o.gradientClipVal > 0)) throw new ConfigError('Trainer.gradientClipVal', 'a positive number', o.gradientClipVal);
  }

  private limit(total: number, lim: number): number {
    return lim <= 1 && !Number.isInteger(lim) ? Math.max(1, Math.floor(total * lim)) : lim === 1 ? total : Math.min(total, lim);
  }

  private maxStepsReached(): boolean {
    return this.options.maxSteps >= 0 && this.globalStep >= this.options.maxSteps;
  }

  /** Trains `module` on `train`, validating on `val` after each epoch. */
  async fit(module: TrainingModule, train: DataLoader, val?: DataLoader): Promise<void> {
    this.stage = 'fit';
    this.shouldStop = false;
    if (this.options.seed !== undefined) manualSeed(this.options.seed);
    const cbs = this.callbacks;
    try {
      await cbs.call('setup', module, this, module, 'fit');
      this.optimizerConfig = module.configureOptimizers();
      await cbs.call('onFitStart', module, this, module);
      for (const l of this.loggers) await l.logHyperparams?.(module.hparams());
      if (val && this.options.numSanityValSteps > 0) {
        this.sanityChecking = true;
        await cbs.call('onSanityCheckStart', module, this, module);
        await this.evaluationLoop(module, val, 'validate', this.options.numSanityValSteps);
        await cbs.call('onSanityCheckEnd', module, this, module);
        this.sanityChecking = false;
      }
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
    const vars = () => module.model.trainableVariables();
    module.model.train();
    const limit = this.limit(train.length, this.options.limitTrainBatches);
    this.numTrainingBatches = limit;
    await cbs.call('onTrainEpochStart', module, this, module);
    const accumulate = this.options.accumulateGradBatches;
    const sums = new MetricAverager();
    let accumulated: tf.NamedTensorMap | null = null;
    let pending = 0;
    let examples = 0;
    const t0 = performance.now();
    let batchIdx = 0;
    for (const batch of train) {
      if (batchIdx >= limit || this.maxStepsReached()) {
        tf.dispose([batch.x, batch.y]);
        break;
      }
      let out: StepOutput | undefined;
      try {
        await cbs.call('onTrainBatchStart', module, this, module, batch, batchIdx);
        let kept: StepOutput | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const o = module.trainingStep(batch, batchIdx);
          if (!o.loss) throw new KilnError('E_NO_LOSS', 'trainingStep returned no loss', { where: `${module.constructor.name}.trainingStep` });
          kept = { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(tf.clone(v))])) };
          let loss = o.loss;
          const penalty = regularization(module);
          if (penalty) loss = tf.add(loss, penalty) as tf.Scalar;
          if (accumulate > 1) loss = tf.div(loss, accumulate) as tf.Scalar;
          cbs.callSync('onBeforeZeroGrad', module, this, module);
          if (pending === 0) cfg.optimizer.zeroGrad();
          cbs.callSync('onBeforeBackward', module, this, module, loss);
          return loss;
        }, vars());
        out = kept!;
        value.dispose();
        await cbs.call('onAfterBackward', module, this, module, grads);
        accumulated = accumulated ? addGrads(accumulated, grads) : grads;
        pending++;
        const last = batchIdx + 1 === limit;
        if (pending === accumulate || last) {
          await cbs.call('onBeforeOptimizerStep', module, this, module, accumulated);
          const clipped = this.options.gradientClipVal !== undefined ? clipGradients(accumulated, this.options.gradientClipVal, this.options.gradientClipAlgorithm) : accumulated;
          cfg.optimizer.step(clipped);
          if (clipped !== accumulated) tf.dispose(Object.values(clipped));
          tf.dispose(Object.values(accumulated));
          accumulated = null;
          pending = 0;
          this.globalStep++;
          if (cfg.scheduler && cfg.interval === 'step') cfg.scheduler.step(this.callbackMetrics);
        }
        const logged = sums.add(out, 'train_');
        examples += out.batchSize;
        if (this.globalStep % this.options.logEveryNSteps === 0 && pending === 0) {
          for (const l of this.loggers) await l.logMetrics({ ...logged, lr: cfg.optimizer.getLr() }, this.globalStep);
        }
        await cbs.call('onTrainBatchEnd', module, this, module, out, batch, batchIdx);
      } finally {
        if (out) tf.dispose(Object.values(out.logs));
        tf.dispose([batch.x, batch.y]);
      }
      batchIdx++;
      if (this.shouldStop && this.currentEpoch + 1 >= this.options.minEpochs) break;
    }
    if (accumulated) tf.dispose(Object.values(accumulated));
    this.trainSamplesPerSec = examples / ((performance.now() - t0) / 1000);
    this.callbackMetrics = { ...this.callbackMetrics, ...sums.means(), epoch: this.currentEpoch };
    const doVal = val && (this.currentEpoch + 1) % this.options.checkValEveryNEpoch === 0;
    if (doVal) {
      const m = await this.evaluationLoop(module, val, 'validate', this.limit(val.length, this.options.limitValBatches));
      Object.assign(this.callbackMetrics, m);
      module.model.train();
    }
    if (cfg.scheduler && (cfg.interval ?? 'epoch') === 'epoch') cfg.scheduler.step(this.callbackMetrics);
    await cbs.call('onTrainEpochEnd', module, this, module);
    const row = { ...this.callbackMetrics, epoch: this.currentEpoch, lr: cfg.optimizer.getLr(), train_samples_per_sec: this.trainSamplesPerSec };
    for (const l of this.loggers) await l.logMetrics(row, this.globalStep);
  }

  /** Runs validation or test batches in eval mode; returns the epoch means (`val_loss`, `test_acc`, …). */
  private async evaluationLoop(module: TrainingModule, loader: DataLoader, stage: 'validate' | 'test', limit: number): Promise<Record<string, number>> {
    const cbs = this.callbacks;
    const V = stage === 'validate' ? 'Validation' : 'Test';
    const prefix = stage === 'validate' ? 'val_' : 'test_';
    const stepFn = stage === 'validate' ? module.validationStep : module.testStep;
    if (!stepFn) throw new KilnError('E_NO_STEP', `${module.constructor.name} has no ${stage === 'validate' ? 'validationStep' : 'testStep'}`);
    module.model.eval();
    await cbs.call(`on${V}Start` as keyof Callback, module, this, module);
    await cbs.call(`on${V}EpochStart` as keyof Callback, module, this, module);
    const sums = new MetricAverager();
    let i = 0;
    for (const batch of loader) {
      if (i >= limit) {
        tf.dispose([batch.x, batch.y]);
        break;
      }
      let out: StepOutput | undefined;
      try {
        await cbs.call(`on${V}BatchStart` as keyof Callback, module, this, module, batch, i);
        out = tf.tidy(() => {
          const o = stepFn.call(module, batch, i);
          return { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(v)])) };
        });
        sums.add(out, prefix);
        await cbs.call(`on${V}BatchEnd` as keyof Callback, module, this, module, out, batch, i);
      } finally {
        if (out) tf.dispose(Object.values(out.logs));
        tf.dispose([batch.x, batch.y]);
      }
      i++;
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

/** Example-weighted running means of a stage's logged scalars. */
class MetricAverager {
  private sums = new Map<string, number>();
  private count = 0;

  /** Adds one step's values; returns them (prefixed) as plain numbers. */
  add(out: StepOutput, prefix: string): Record<string, number> {
    const now: Record<string, number> = {};
    for (const [k, v] of Object.entries(out.logs)) {
      const x = v.dataSync()[0];
      now[prefix + k] = x;
      this.sums.set(prefix + k, (this.sums.get(prefix + k) ?? 0) + x * out.batchSize);
    }
    this.count += out.batchSize;
    return now;
  }

  means(): Record<string, number> {
    return Object.fromEntries([...this.sums].map(([k, s]) => [k, s / Math.max(this.count, 1)]));
  }
}
