import { tf, ConfigError, TensorLeakError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of `TensorLeakCheck`. */
export interface TensorLeakCheckOptions {
  /** Steps to let pass before the baseline is taken (optimizer slots are created lazily; default 2). */
  warmupSteps?: number;
  /** Tensors the count may grow by before it is a leak (default 0). */
  tolerance?: number;
}

/**
 * Fails fast when the live tensor count grows from one training step to the next — a leak that
 * would otherwise surface hours later as an out-of-memory error. The baseline is taken afresh in
 * every epoch (after `warmupSteps` steps), because callbacks legitimately allocate once at epoch
 * boundaries (StochasticWeightAveraging's running average, a new parameter group's optimizer
 * slots); what must never happen is growth from step to step within an epoch.
 */
export class TensorLeakCheck implements Callback {
  private baseline = -1;
  private seen = 0;

  constructor(private readonly options: TensorLeakCheckOptions = {}) {
    const w = options.warmupSteps ?? 2;
    if (!Number.isInteger(w) || w < 1) throw new ConfigError('TensorLeakCheck.warmupSteps', 'a positive integer', options.warmupSteps);
  }

  onTrainEpochStart(): void {
    this.baseline = -1;
    this.seen = 0;
  }

  onTrainBatchEnd(trainer: Trainer): void {
    // Measured at optimizer-step boundaries only: an open accumulation window legitimately holds gradients.
    if (!trainer.atOptimizerStepBoundary) return;
    const n = tf.memory().numTensors;
    this.seen++;
    if (this.seen === (this.options.warmupSteps ?? 2)) this.baseline = n;
    else if (this.baseline >= 0 && n > this.baseline + (this.options.tolerance ?? 0)) {
      throw new TensorLeakError(`training step ${trainer.globalStep} (epoch ${trainer.currentEpoch})`, this.baseline, n);
    }
  }
}
