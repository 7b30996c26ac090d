import { ReduceLROnPlateau as PlateauSchedule, type ReduceLrOnPlateauOptions } from '@kiln/optim';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import { Monitor, type MonitorOptions } from './monitor.js';

export interface ReduceLROnPlateauOptions extends MonitorOptions {
  /** Multiply the rate by this when the metric stalls (default 0.1). */
  factor?: number;
  /** Epochs without improvement before reducing (default 10). */
  patience?: number;
  /** Epochs to wait after a reduction before counting again (default 0). */
  cooldown?: number;
  /** Never go below this rate, for all groups or one per group (default 0). */
  minLr?: number | number[];
  /**
   * PyTorch's improvement threshold, used instead of `minDelta` when given: relative
   * (`thresholdMode: 'rel'`, PyTorch's default) or absolute.
   */
  threshold?: number;
  /** Whether `threshold` is relative (`rel`) or absolute (`abs`). */
  thresholdMode?: 'rel' | 'abs';
}

/**
 * Multiplies every parameter group's learning rate by `factor` once the monitored metric has not
 * improved for more than `patience` epochs, then waits `cooldown` epochs: `@kiln/optim`'s
 * `ReduceLROnPlateau` (PyTorch's semantics, checked against PyTorch there) driven by the trainer's
 * epoch metrics. An improvement is a change beyond `minDelta` (absolute, as Keras counts it)
 * unless a PyTorch-style `threshold` is given.
 */
export class ReduceLROnPlateau implements Callback {
  readonly stateKey: string;
  /** Its `onTrainEpochEnd` runs after the module's, seeing what that logged (Lightning's monitoring callbacks). */
  readonly monitorsMetrics = true;
  private readonly monitor: Monitor;
  private readonly scheduleOptions: ReduceLrOnPlateauOptions;
  private schedule?: PlateauSchedule;
  /** State restored before the optimizer was known (resuming), applied when it is. */
  private pending?: Record<string, unknown>;

  constructor(options: ReduceLROnPlateauOptions = {}) {
    this.monitor = new Monitor(options, 'ReduceLROnPlateau');
    const { factor, patience, cooldown, minLr, threshold, thresholdMode } = options;
    this.scheduleOptions = {
      monitor: this.monitor.monitor,
      mode: this.monitor.mode,
      factor,
      patience,
      cooldown,
      minLr,
      threshold: threshold ?? this.monitor.minDelta,
      thresholdMode: threshold === undefined ? 'abs' : (thresholdMode ?? 'rel'),
    };
    // Validate the options now rather than at the first epoch's end.
    PlateauSchedule.validate(this.scheduleOptions);
    this.stateKey = `ReduceLROnPlateau{monitor=${this.monitor.monitor}}`;
  }

  onTrainEpochEnd(trainer: Trainer): void {
    // Epochs without a fresh value (no validation this epoch) do not count towards patience.
    const current = this.monitor.current(trainer, 'ReduceLROnPlateau');
    if (current === undefined) return;
    if (!this.schedule) {
      this.schedule = new PlateauSchedule(trainer.optimizerConfig!.optimizer, this.scheduleOptions);
      if (this.pending) this.schedule.loadStateDict(this.pending);
      this.pending = undefined;
    }
    this.schedule.step(current);
  }

  stateDict(): Record<string, unknown> {
    return this.schedule?.stateDict() ?? this.pending ?? { best: null, numBadEpochs: 0, cooldownCounter: 0, lastEpoch: 0 };
  }

  loadStateDict(s: Record<string, unknown>): void {
    if (this.schedule) this.schedule.loadStateDict(s);
    else this.pending = s;
  }
}
