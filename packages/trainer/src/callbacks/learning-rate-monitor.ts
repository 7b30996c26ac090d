import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of `LearningRateMonitor`. */
export interface LearningRateMonitorOptions {
  /** Log at every optimizer step or once per epoch (default `epoch`). */
  loggingInterval?: 'step' | 'epoch';
  /** Entries kept in `history` (the most recent; default 1000), so a long run's memory stays flat. */
  historyLimit?: number;
}

/**
 * Sends each parameter group's learning rate to the loggers (`lr-<group name>`), so schedules can
 * be checked against the loss curve.
 */
export class LearningRateMonitor implements Callback {
  /** The most recent values logged (at most `historyLimit`), for inspection. */
  readonly history: {
    /** Global step at which the rates were read. */
    step: number;
    /** Learning rate per parameter group, keyed `lr-<group name>` (`lr-<index>` for an unnamed group). */
    lrs: Record<string, number>;
  }[] = [];

  constructor(private readonly options: LearningRateMonitorOptions = {}) {}

  private async record(trainer: Trainer): Promise<void> {
    const opt = trainer.optimizerConfig!.optimizer;
    const lrs: Record<string, number> = {};
    opt.paramGroups.forEach((g, i) => (lrs[`lr-${g.name || i}`] = opt.getLr(i)));
    this.history.push({ step: trainer.globalStep, lrs });
    const limit = this.options.historyLimit ?? 1000;
    if (this.history.length > limit) this.history.splice(0, this.history.length - limit);
    for (const l of trainer.loggers) await l.logMetrics(lrs, trainer.globalStep);
  }

  async onTrainBatchStart(trainer: Trainer): Promise<void> {
    if (this.options.loggingInterval === 'step' && trainer.atOptimizerStepBoundary) await this.record(trainer);
  }

  async onTrainEpochStart(trainer: Trainer): Promise<void> {
    if ((this.options.loggingInterval ?? 'epoch') === 'epoch') await this.record(trainer);
  }
}
