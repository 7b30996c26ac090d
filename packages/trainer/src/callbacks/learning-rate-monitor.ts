import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of `LearningRateMonitor`. */
export interface LearningRateMonitorOptions {
  /** Log at every optimizer step or once per epoch (default `epoch`). */
  loggingInterval?: 'step' | 'epoch';
}

/**
 * Sends each parameter group's learning rate to the loggers (`lr-<group name>`), so schedules can
 * be checked against the loss curve.
 */
export class LearningRateMonitor implements Callback {
  /** Every value logged, for inspection. */
  readonly history: {
    /** The optimizer step at which the rates were read. */
    step: number;
    /** Each group's rate, keyed `lr-<group name>`. */
    lrs: Record<string, number>;
  }[] = [];

  constructor(private readonly options: LearningRateMonitorOptions = {}) {}

  private async record(trainer: Trainer): Promise<void> {
    const opt = trainer.optimizerConfig!.optimizer;
    const lrs: Record<string, number> = {};
    opt.paramGroups.forEach((g, i) => (lrs[`lr-${g.name || i}`] = opt.getLr(i)));
    this.history.push({ step: trainer.globalStep, lrs });
    for (const l of trainer.loggers) await l.logMetrics(lrs, trainer.globalStep);
  }

  async onTrainBatchStart(trainer: Trainer): Promise<void> {
    if (this.options.loggingInterval === 'step' && trainer.atOptimizerStepBoundary) await this.record(trainer);
  }

  async onTrainEpochStart(trainer: Trainer): Promise<void> {
    if ((this.options.loggingInterval ?? 'epoch') === 'epoch') await this.record(trainer);
  }
}
