import { tf, ConfigError, KilnError } from '@kiln/core';
import type { Module } from '@kiln/layers';
import { clipGradients, type Optimizer } from '@kiln/optim';
import type { AnyBatch } from '@kiln/data';
import type { Trainer } from './trainer.js';
import type { LogOptions } from './result-collection.js';

/** What a step returns: the loss to differentiate (training) and scalars to log, averaged per epoch. */
export interface StepOutput {
  /** The scalar to minimise (training steps must return one). */
  loss?: tf.Scalar;
  /** Metric name → scalar; the trainer prefixes the stage (`train_`, `val_`, `test_`). */
  logs: Record<string, tf.Scalar>;
  /** Examples in the batch; epoch averages are weighted by it. */
  batchSize: number;
}

/** A learning-rate scheduler as the trainer drives it (implemented in @kiln/optim). */
export interface SchedulerLike {
  /**
   * Called once per epoch (`epoch`) or per optimizer step (`step`), with the epoch's metrics, or
   * with the monitored value alone when `OptimizerConfig.monitor` names one.
   */
  step(metrics?: Record<string, number> | number): void;
  /** State to keep in checkpoints. */
  stateDict?(): Record<string, unknown>;
  /** Takes back what `stateDict` returned. */
  loadStateDict?(state: Record<string, unknown>): void;
}

/** What `configureOptimizers` returns. */
export interface OptimizerConfig {
  /** Updates the model's parameters. */
  optimizer: Optimizer;
  /** Adjusts the learning rate as training goes (a schedule or `ReduceLROnPlateau`). */
  scheduler?: SchedulerLike;
  /** When the scheduler steps. Default `epoch`. */
  interval?: 'epoch' | 'step';
  /**
   * Metric a plateau scheduler watches (e.g. `val_loss`): the scheduler is stepped with its value,
   * and only in epochs that computed it.
   */
  monitor?: string;
}

/**
 * Like a LightningModule: owns a network and says how one step trains, validates and tests it.
 * The Trainer runs the loop, computes gradients, applies the optimizer and fires hooks. A module
 * may also implement any `Callback` hook (without the trainer/module arguments).
 */
export abstract class TrainingModule {
  /** The network being trained. */
  abstract readonly model: Module;

  /**
   * The trainer running this module (set from the start of `fit`, `validate`, `test` or
   * `predict`), for module hooks that need its state: `this.trainer.currentEpoch`, its loggers.
   */
  trainer?: Trainer;

  /**
   * With `false`, `trainingStep` optimizes by itself (Lightning's manual optimization): it takes
   * its optimizers from `this.optimizers()`, computes gradients with `this.manualBackward(...)` and
   * applies them with `this.stepOptimizer(...)`, any number of times per batch (GANs, several
   * optimizers, custom schedules of updates). The trainer then only counts the batch as one step
   * (`globalStep` counts training batches), logs its outputs and steps `interval: 'step'` schedulers.
   * A manual `trainingStep` may be `async`.
   */
  automaticOptimization = true;

  /**
   * Forward pass and loss for one training batch; runs inside the gradient tape. A module declares
   * the batch it expects (`Batch` for one input and one target tensor, `Batch<{ image; mask }>` for
   * records): the loader's examples decide what arrives.
   */
  abstract trainingStep(batch: AnyBatch, batchIdx: number): StepOutput | Promise<StepOutput>;

  /**
   * Loss and metrics for one validation batch, run in eval mode without gradients; the trainer
   * averages its logs over the epoch as `val_<name>`. Needed by `validate` and by `fit` given validation data.
   */
  validationStep?(batch: AnyBatch, batchIdx: number): StepOutput;
  /** Loss and metrics for one test batch, like `validationStep`, logged as `test_<name>`; needed by `test`. */
  testStep?(batch: AnyBatch, batchIdx: number): StepOutput;

  /** Default prediction: the model's output for the batch's input (override it for record inputs). */
  predictStep(batch: AnyBatch, _batchIdx: number): tf.Tensor {
    // Duck-typed rather than instanceof, so a tensor from another bundle of tfjs (CJS beside ESM) still counts.
    const x = batch.x as Partial<tf.Tensor>;
    if (!(Array.isArray(x.shape) && typeof x.dtype === 'string' && typeof x.dataSync === 'function')) {
      throw new ConfigError(`${this.constructor.name}.predictStep`, 'a batch whose x is one tensor', `a record with keys ${Object.keys(batch.x).join(', ')}`, 'override predictStep to feed record inputs to the model');
    }
    return this.model.forward(batch.x as tf.Tensor);
  }

  /** One optimizer (with an optional schedule), or several for manual optimization. */
  abstract configureOptimizers(): OptimizerConfig | OptimizerConfig[];

  /**
   * The optimizers `configureOptimizers` returned, in order, for manual optimization (valid while
   * `fit` runs).
   */
  optimizers(): Optimizer[] {
    const cfgs = this.trainer?.optimizerConfigs;
    if (!cfgs || cfgs.length === 0) throw new KilnError('E_NO_RUN', `${this.constructor.name}.optimizers() is only available while trainer.fit runs`);
    return cfgs.map((c) => c.optimizer);
  }

  /**
   * Manual optimization's backward pass: evaluates `lossFn` under the gradient tape and returns the
   * gradients with respect to `variables` (default: the model's trainable parameters), firing
   * `onBeforeBackward` and `onAfterBackward` as the automatic loop does. tfjs records and
   * differentiates in one call, so the forward pass goes in the closure. The caller owns the
   * gradients (`stepOptimizer` disposes them) and the returned loss.
   */
  async manualBackward(lossFn: () => tf.Scalar, variables: tf.Variable[] = this.model.trainableVariables()): Promise<{
    /** The value `lossFn` returned (dispose it when done). */
    loss: tf.Scalar;
    /** Gradient of the loss per variable, by variable name (hand them to `stepOptimizer`, which disposes them). */
    grads: tf.NamedTensorMap;
  }> {
    const trainer = this.requireTrainer('manualBackward');
    const { value, grads } = tf.variableGrads(() => {
      const loss = lossFn();
      trainer.callbacks.callSync('onBeforeBackward', this, trainer, this, loss);
      return loss;
    }, variables);
    try {
      await trainer.callbacks.call('onAfterBackward', this, trainer, this, grads);
    } catch (e) {
      tf.dispose([value, ...Object.values(grads)]);
      throw e;
    }
    return { loss: value, grads };
  }

  /**
   * Manual optimization's update: fires `onBeforeOptimizerStep`, clips as the trainer is
   * configured (through `configureGradientClipping`), applies `optimizerStep` and disposes `grads`.
   * A callback that vetoed the update (TerminateOnNaN on a non-finite gradient) makes it a no-op.
   */
  async stepOptimizer(optimizer: Optimizer, grads: tf.NamedTensorMap): Promise<void> {
    const trainer = this.requireTrainer('stepOptimizer');
    try {
      if (trainer.skipOptimizerStep) return;
      await trainer.callbacks.call('onBeforeOptimizerStep', this, trainer, this, grads);
      const clipped = this.configureGradientClipping(grads, trainer.options.gradientClipVal, trainer.options.gradientClipAlgorithm);
      try {
        this.optimizerStep(optimizer, clipped);
      } finally {
        if (clipped !== grads) tf.dispose(Object.values(clipped));
      }
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  /**
   * Applies gradients with an optimizer. Override to change how the update is made (a warm-up
   * that scales the rate, skipping some steps); the trainer calls it in automatic optimization too.
   */
  optimizerStep(optimizer: Optimizer, grads: tf.NamedTensorMap): void {
    optimizer.step(grads);
  }

  /**
   * Clips gradients before `optimizerStep`: by default the trainer's `gradientClipVal` /
   * `gradientClipAlgorithm`. Override to clip per parameter group, or not at all. Returns the
   * gradients to apply (new tensors when clipped; the inputs are disposed by the caller).
   */
  configureGradientClipping(grads: tf.NamedTensorMap, clipVal: number | undefined, algorithm: 'norm' | 'value'): tf.NamedTensorMap {
    return clipVal === undefined ? grads : clipGradients(grads, clipVal, algorithm);
  }

  private requireTrainer(what: string): Trainer {
    if (!this.trainer || this.trainer.stage !== 'fit') throw new KilnError('E_NO_RUN', `${this.constructor.name}.${what}() is only available while trainer.fit runs`, { hint: 'call it from trainingStep with automaticOptimization = false' });
    return this.trainer;
  }

  /**
   * Logs a value, as Lightning's `self.log`: from `trainingStep`, `validationStep`, `testStep` and
   * their batch and epoch hooks (also from a callback's hooks, through `module.log`). Defaults
   * follow where it is called: in `trainingStep` and the training batch hooks `onStep: true,
   * onEpoch: false`; elsewhere `onStep: false, onEpoch: true`. With both, the keys are
   * `name_step` and `name_epoch`; otherwise `name`. Epoch values are reduced with `reduce` (`mean`
   * weighted by the batch size by default) and land in `trainer.callbackMetrics` at the end of the
   * epoch (or validation), where ModelCheckpoint, EarlyStopping and the loggers see them; step
   * values are in `trainer.lastTrainMetrics` and reach the loggers every `logEveryNSteps` steps.
   *
   * The value stays on the device: logging costs no host read. The trainer reads step values only
   * in steps where a logger or callback consumes them, and epoch values once per epoch.
   */
  log(name: string, value: number | tf.Scalar, options: LogOptions = {}): void {
    if (!this.trainer) throw new KilnError('E_LOG_PLACE', `${this.constructor.name}.log('${name}') was called with no trainer running`, { hint: 'log from a step or hook while trainer.fit / validate / test runs' });
    this.trainer.recordLog(this.constructor.name, name, value, options);
  }

  /** `log` for several values with the same options (Lightning's `log_dict`). */
  logDict(values: Record<string, number | tf.Scalar>, options: LogOptions = {}): void {
    for (const [k, v] of Object.entries(values)) this.log(k, v, options);
  }

  /** Hyper-parameters logged once at the start of `fit`. */
  hparams(): Record<string, unknown> {
    return {};
  }
}
