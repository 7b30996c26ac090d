import { ConfigError, KilnError } from '@kiln/core';
import type { Trainer } from '../trainer.js';

/** Whether lower (`min`, losses) or higher (`max`, accuracies) is better. */
export type MonitorMode = 'min' | 'max';

/** What every metric-watching callback shares: which metric, which direction, what counts as better. */
export interface MonitorOptions {
  /** Metric in `trainer.callbackMetrics` (default `val_loss`). */
  monitor?: string;
  /** `min` when lower is better (losses), `max` when higher is better (accuracy). Default: `max` for names containing `acc`, else `min`. */
  mode?: MonitorMode;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
}

/**
 * The one place that decides "is this value better than the best so far" (Keras' MonitorCallback).
 * Pure: callbacks keep the best value in their own state.
 */
export class Monitor {
  /** The metric watched (`val_loss`). */
  readonly monitor: string;
  /** Whether lower or higher is better. */
  readonly mode: MonitorMode;
  /** Least change that counts as an improvement (absolute). */
  readonly minDelta: number;

  constructor(options: MonitorOptions, owner: string) {
    this.monitor = options.monitor ?? 'val_loss';
    this.mode = options.mode ?? (/acc/.test(this.monitor) ? 'max' : 'min');
    if (this.mode !== 'min' && this.mode !== 'max') throw new ConfigError(`${owner}.mode`, "'min' or 'max'", options.mode);
    this.minDelta = Math.abs(options.minDelta ?? 0);
    if (!Number.isFinite(this.minDelta)) throw new ConfigError(`${owner}.minDelta`, 'a finite number', options.minDelta);
  }

  /** The worst possible value, the start of the search. */
  get worst(): number {
    return this.mode === 'min' ? Infinity : -Infinity;
  }

  /** True when `current` beats `best` by more than minDelta. */
  improved(current: number, best: number): boolean {
    return this.mode === 'min' ? current < best - this.minDelta : current > best + this.minDelta;
  }

  /**
   * The monitored value when it was computed in the current epoch (this epoch's training means or
   * validation); `undefined` when it is not due this epoch (validation every N epochs, or a value
   * only left over from an earlier epoch), so that no decision is made on a stale or missing value;
   * an error naming the metrics that exist when the metric will never come.
   */
  current(trainer: Trainer, owner: string): number | undefined {
    const fresh = trainer.freshMetrics as Set<string> | undefined;
    // Outside a trainer's fit (a hook called directly), every metric counts as current.
    if (!fresh) return this.read(trainer, owner);
    if (fresh.has(this.monitor)) return this.read(trainer, owner);
    const later = this.monitor.startsWith('val_') && trainer.validationEnabled;
    if (later || trainer.callbackMetrics[this.monitor] !== undefined) return undefined;
    return this.read(trainer, owner);
  }

  /** The monitored value now, or an error naming the metrics that do exist. */
  read(trainer: Trainer, owner: string): number {
    const v = trainer.callbackMetrics[this.monitor];
    if (v === undefined) {
      const have = Object.keys(trainer.callbackMetrics).filter((k) => k !== 'epoch');
      throw new KilnError('E_NO_METRIC', `${owner} monitors '${this.monitor}', which was not logged`, {
        expected: `one of: ${have.join(', ') || '(no metrics yet)'}`,
        found: this.monitor,
        hint: this.monitor.startsWith('val_') ? 'pass a validation loader to fit, or monitor a train_ metric' : undefined,
      });
    }
    return v;
  }
}
