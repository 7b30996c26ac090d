import { ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { SchedulerLike } from '../training-module.js';

/** A learning rate as a function of the epoch (0-based) and the current rate (Keras' form). */
export type LrFunction = (epoch: number, lr: number) => number;

/** Options of `LearningRateScheduler`. */
export interface LearningRateSchedulerOptions {
  /** A function of (epoch, lr), or any `@kiln/optim` schedule (an object with `step()`). */
  schedule: LrFunction | SchedulerLike;
  /** Apply at each epoch start (default) or step the schedule after every optimizer step. */
  interval?: 'epoch' | 'step';
  /** Parameter group to set with a function schedule (default: all). */
  group?: number;
}

/**
 * Drives the learning rate from a callback rather than `configureOptimizers`: handy to add a
 * schedule to a module that has none. A function schedule sets the rate at each epoch start; an
 * `@kiln/optim` schedule object is stepped at epoch ends (or steps) and its state is checkpointed.
 */
export class LearningRateScheduler implements Callback {
  readonly stateKey = 'LearningRateScheduler';
  private readonly interval: 'epoch' | 'step';

  constructor(private readonly options: LearningRateSchedulerOptions) {
    if (!options || (typeof options.schedule !== 'function' && typeof options.schedule?.step !== 'function')) {
      throw new ConfigError('LearningRateScheduler.schedule', 'a function (epoch, lr) => lr or a schedule with step()', options?.schedule);
    }
    this.interval = options.interval ?? 'epoch';
  }

  onTrainEpochStart(trainer: Trainer): void {
    const s = this.options.schedule;
    if (typeof s !== 'function') return;
    const opt = trainer.optimizerConfig!.optimizer;
    const lr = s(trainer.currentEpoch, opt.getLr(this.options.group ?? 0));
    if (!Number.isFinite(lr) || lr < 0) throw new ConfigError('LearningRateScheduler.schedule', 'a finite learning rate >= 0', lr);
    opt.setLr(lr, this.options.group);
  }

  onTrainBatchEnd(trainer: Trainer): void {
    const s = this.options.schedule;
    if (typeof s !== 'function' && this.interval === 'step' && trainer.atOptimizerStepBoundary) s.step(trainer.callbackMetrics);
  }

  onTrainEpochEnd(trainer: Trainer): void {
    const s = this.options.schedule;
    if (typeof s !== 'function' && this.interval === 'epoch') s.step(trainer.callbackMetrics);
  }

  stateDict(): Record<string, unknown> {
    const s = this.options.schedule;
    return typeof s !== 'function' && s.stateDict ? { schedule: s.stateDict() } : {};
  }

  loadStateDict(state: Record<string, unknown>): void {
    const s = this.options.schedule;
    if (typeof s !== 'function' && s.loadStateDict && state.schedule) s.loadStateDict(state.schedule as Record<string, unknown>);
  }
}
