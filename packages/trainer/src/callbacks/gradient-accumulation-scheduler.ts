import { ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of `GradientAccumulationScheduler`. */
export interface GradientAccumulationSchedulerOptions {
  /** Epoch (0-based) → batches per optimizer step from that epoch on, e.g. `{ 0: 1, 4: 2, 8: 4 }`. */
  scheduling: Record<number, number>;
}

/**
 * Changes gradient accumulation by epoch: a larger effective batch later in training, without
 * more memory per step.
 */
export class GradientAccumulationScheduler implements Callback {
  private readonly steps: [number, number][];

  constructor(options: GradientAccumulationSchedulerOptions) {
    const entries = Object.entries(options?.scheduling ?? {}).map(([e, n]) => [Number(e), n] as [number, number]);
    if (entries.length === 0) throw new ConfigError('GradientAccumulationScheduler.scheduling', 'at least one { epoch: batches } entry', options?.scheduling);
    for (const [e, n] of entries) {
      if (!Number.isInteger(e) || e < 0) throw new ConfigError('GradientAccumulationScheduler.scheduling', 'epochs as non-negative integers', e);
      if (!Number.isInteger(n) || n < 1) throw new ConfigError(`GradientAccumulationScheduler.scheduling[${e}]`, 'a positive integer', n);
    }
    this.steps = entries.sort((a, b) => a[0] - b[0]);
  }

  /** Batches per optimizer step in `epoch` (1 before the first scheduled epoch). */
  factorAt(epoch: number): number {
    let f = 1;
    for (const [e, n] of this.steps) if (epoch >= e) f = n;
    return f;
  }

  onTrainEpochStart(trainer: Trainer): void {
    trainer.accumulateGradBatches = this.factorAt(trainer.currentEpoch);
  }
}
