import { KilnError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of `TerminateOnNaN`. */
export interface TerminateOnNaNOptions {
  /** Metric of each training step to check (default `train_loss`). */
  monitor?: string;
  /** Throw instead of stopping quietly (default false). */
  raise?: boolean;
}

/** Stops training at the first step whose loss is NaN or infinite. */
export class TerminateOnNaN implements Callback {
  /** Global step at which the non-finite value appeared, or -1. */
  stoppedAtStep = -1;

  constructor(private readonly options: TerminateOnNaNOptions = {}) {}

  onTrainBatchEnd(trainer: Trainer): void {
    const key = this.options.monitor ?? 'train_loss';
    // The trainer already copied the step's values to the host; no extra sync here.
    const v = trainer.lastTrainMetrics[key];
    if (v === undefined || Number.isFinite(v)) return;
    this.stoppedAtStep = trainer.globalStep;
    trainer.shouldStop = true;
    if (this.options.raise) throw new KilnError('E_NON_FINITE', `${key} became ${v} at step ${trainer.globalStep}`, { hint: 'lower the learning rate or clip gradients (gradientClipVal)' });
  }
}
