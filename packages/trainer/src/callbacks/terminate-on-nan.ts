import { tf, ConfigError, KilnError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of `TerminateOnNaN`. */
export interface TerminateOnNaNOptions {
  /** Metric of each training step to check (default `train_loss`). */
  monitor?: string;
  /** Throw a `NonFiniteError` instead of stopping quietly (default false). */
  raise?: boolean;
  /**
   * Check every gradient before the optimizer applies it (default false). One small host read per
   * step; in exchange a NaN or Inf never reaches the weights, and the error names the first
   * parameter whose gradient went non-finite.
   */
  checkGradients?: boolean;
  /**
   * What a non-finite gradient does (with `checkGradients`): `'stop'` ends the run (or throws with
   * `raise`) before the weights change; `'skip'` drops that batch's update and trains on.
   * Default 'stop'.
   */
  onNonFinite?: 'stop' | 'skip';
}

/** Training produced a NaN or infinite loss or gradient; says where and with which learning rate. */
export class NonFiniteError extends KilnError {
  constructor(
    /** Global step at which the value went non-finite (its update was not applied). */
    readonly step: number,
    /** What went non-finite: the monitored metric's name (such as `train_loss`) or `a gradient`. */
    readonly what: string,
    /** Learning rate of the first parameter group at that step (NaN without an optimizer). */
    readonly lr: number,
    /** Path (or variable name) of the first parameter whose gradient was non-finite; unset for a loss. */
    readonly parameter?: string,
  ) {
    super('E_NON_FINITE', `${what} became non-finite at step ${step}${parameter ? ` (first non-finite gradient: '${parameter}')` : ''}`, {
      where: `optimizer step ${step}, learning rate ${lr}`,
      hint: 'lower the learning rate, clip gradients (--gradient-clip / gradientClipVal), or check the data for NaN/Inf; the last checkpoint written before this step is intact',
    });
  }
}

/**
 * Stops training at the first step whose loss is NaN or infinite and, with `checkGradients`, at the
 * first non-finite gradient before it is applied (or skips that update).
 */
export class TerminateOnNaN implements Callback {
  /** Global step at which the non-finite value appeared, or -1. */
  stoppedAtStep = -1;
  /** Steps whose update was dropped (`onNonFinite: 'skip'`). */
  skippedSteps = 0;
  /** The error describing the stop, once one happened. */
  error: NonFiniteError | null = null;
  private skippedThisBatch = false;

  constructor(private readonly options: TerminateOnNaNOptions = {}) {
    const a = options.onNonFinite ?? 'stop';
    if (a !== 'stop' && a !== 'skip') throw new ConfigError('TerminateOnNaN.onNonFinite', "'stop' or 'skip'", options.onNonFinite);
  }

  async onAfterBackward(trainer: Trainer, module: TrainingModule, grads: tf.NamedTensorMap): Promise<void> {
    if (!this.options.checkGradients) return;
    const names = Object.keys(grads);
    if (names.length === 0) return;
    // One [P] flag vector for all gradients, read once.
    const flags = tf.tidy(() => tf.stack(names.map((n) => tf.all(tf.isFinite(grads[n])))));
    let ok: Uint8Array | Int32Array;
    try {
      ok = (await flags.data()) as Uint8Array | Int32Array;
    } finally {
      flags.dispose();
    }
    const bad = ok.findIndex((v) => v === 0);
    if (bad < 0) return;
    const byVariable = new Map(module.model.namedParameters().map(([path, p]) => [p.variable.name, path]));
    const param = byVariable.get(names[bad]) ?? names[bad];
    const lr = trainer.optimizerConfig?.optimizer.getLr() ?? NaN;
    if ((this.options.onNonFinite ?? 'stop') === 'skip') {
      this.skippedSteps++;
      this.skippedThisBatch = true;
      trainer.skipOptimizerStep = true;
      console.warn(`warning: skipping the update of step ${trainer.globalStep}: the gradient of '${param}' is not finite (learning rate ${lr})`);
      return;
    }
    // Stopping: this update is dropped too, so the weights stay the last finite ones.
    trainer.skipOptimizerStep = true;
    this.fail(trainer, new NonFiniteError(trainer.globalStep, 'a gradient', lr, param));
  }

  /** Checks every step's loss, so the trainer reads the step's values each step. */
  needsStepMetrics(): boolean {
    return true;
  }

  onTrainBatchEnd(trainer: Trainer): void {
    const key = this.options.monitor ?? 'train_loss';
    // The trainer already copied the step's values to the host (needsStepMetrics); no extra sync here.
    const v = trainer.lastTrainMetrics[key];
    const skipped = this.skippedThisBatch;
    this.skippedThisBatch = false;
    // A gradient check of this batch already dropped its update, or stopped the run (and said more than the loss can).
    if (v === undefined || Number.isFinite(v) || this.error || skipped) return;
    this.fail(trainer, new NonFiniteError(trainer.globalStep, key, trainer.optimizerConfig?.optimizer.getLr() ?? NaN));
  }

  private fail(trainer: Trainer, error: NonFiniteError): void {
    this.stoppedAtStep = trainer.globalStep;
    this.error = error;
    trainer.shouldStop = true;
    if (this.options.raise) throw error;
  }
}
