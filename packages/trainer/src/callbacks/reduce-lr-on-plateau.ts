import { ConfigError } from '@kiln/core';
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
  /** Never go below this rate (default 0). */
  minLr?: number;
}

/**
 * Multiplies every parameter group's learning rate by `factor` once the monitored metric has not
 * improved for `patience` epochs (PyTorch's ReduceLROnPlateau, as a callback).
 */
export class ReduceLROnPlateau implements Callback {
  readonly stateKey: string;
  private readonly monitor: Monitor;
  private best: number;
  private wait = 0;
  private cooldownLeft = 0;

  constructor(private readonly options: ReduceLROnPlateauOptions = {}) {
    this.monitor = new Monitor(options, 'ReduceLROnPlateau');
    const f = options.factor ?? 0.1;
    if (!(f > 0 && f < 1)) throw new ConfigError('ReduceLROnPlateau.factor', 'a number in (0, 1)', options.factor);
    this.best = this.monitor.worst;
    this.stateKey = `ReduceLROnPlateau{monitor=${this.monitor.monitor}}`;
  }

  onTrainEpochEnd(trainer: Trainer): void {
    const current = this.monitor.read(trainer, 'ReduceLROnPlateau');
    if (this.monitor.improved(current, this.best)) {
      this.best = current;
      this.wait = 0;
    } else if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
    } else if (++this.wait > (this.options.patience ?? 10)) {
      const opt = trainer.optimizerConfig!.optimizer;
      opt.paramGroups.forEach((_, i) => opt.setLr(Math.max(opt.getLr(i) * (this.options.factor ?? 0.1), this.options.minLr ?? 0), i));
      this.wait = 0;
      this.cooldownLeft = this.options.cooldown ?? 0;
    }
  }

  stateDict(): Record<string, unknown> {
    return { best: Number.isFinite(this.best) ? this.best : null, wait: this.wait, cooldownLeft: this.cooldownLeft };
  }

  loadStateDict(s: Record<string, unknown>): void {
    this.best = s.best === null || s.best === undefined ? this.monitor.worst : Number(s.best);
    this.wait = Number(s.wait ?? 0);
    this.cooldownLeft = Number(s.cooldownLeft ?? 0);
  }
}
