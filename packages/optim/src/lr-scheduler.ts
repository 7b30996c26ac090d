import { ConfigError } from '@kiln/core';
import type { Optimizer } from './optimizer.js';
import type { Schedule } from './schedules.js';

/** Scheduler state saved in checkpoints. */
export interface LrSchedulerState {
  [key: string]: unknown;
  /** Number of `step()` calls so far. */
  t: number;
}

/**
 * Binds a `Schedule` to an optimizer: every parameter group gets `schedule(t, group.initialLr, i)`.
 * The rate for t = 0 is set on construction, and each `step()` (called per epoch or per optimizer
 * step, as the trainer's `interval` says) advances t by one — PyTorch's scheduler protocol.
 *
 *   const scheduler = new LrScheduler(optimizer, withWarmup(cosineAnnealingLr({ tMax: 90 }), { steps: 10 }));
 */
export class LrScheduler {
  private t = 0;

  constructor(
    /** The optimizer whose groups it sets. */
    readonly optimizer: Optimizer,
    /** The rate of each group as a function of the step count and its base rate. */
    readonly schedule: Schedule,
  ) {
    if (typeof schedule !== 'function') throw new ConfigError('LrScheduler.schedule', 'a schedule function (t, baseLr, group) => lr', schedule);
    this.apply();
  }

  /** Advances one epoch or step. Metrics are ignored (see `ReduceLROnPlateau` for a metric-driven schedule). */
  step(): void {
    this.t++;
    this.apply();
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.t;
  }

  /** The rate of each group as last set. */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.hyper.lr);
  }

  /** Its position in the schedule, for checkpoints. */
  stateDict(): LrSchedulerState {
    return { t: this.t };
  }

  /** Takes back what `stateDict` returned. */
  loadStateDict(state: Record<string, unknown>): void {
    const t = state?.t;
    if (!(Number.isInteger(t) && (t as number) >= 0)) throw new ConfigError('LrScheduler.loadStateDict(state).t', 'an integer >= 0', t);
    this.t = t as number;
    this.apply();
  }

  private apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => {
      const lr = this.schedule(this.t, g.initialLr, i);
      if (!(Number.isFinite(lr) && lr >= 0)) throw new ConfigError(`LrScheduler.schedule(t=${this.t}, group ${i})`, 'a finite learning rate >= 0', lr);
      g.hyper.lr = lr;
    });
  }
}
