import { tf, ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';
import { Monitor, type MonitorOptions } from './monitor.js';

export interface EarlyStoppingOptions extends MonitorOptions {
  /** Epochs without improvement before stopping (default 3). */
  patience?: number;
  /** Stop at once if the metric does not beat this value (default: none). */
  baseline?: number;
  /** Ignore epochs before this one (0-based) — warm-up epochs are noisy (default 0). */
  startFromEpoch?: number;
  /** At the end of training, put back the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
  /** Stop when the metric becomes NaN or ±Infinity (default true). */
  checkFinite?: boolean;
  /** Stop as soon as the metric passes this value (default: none). */
  stoppingThreshold?: number;
  /**
   * Stop at once when the metric is worse than this value — above it in `min` mode, below it in
   * `max` mode — however much patience is left: a run whose loss exploded will not come back
   * (Lightning's `divergence_threshold`; default: none).
   */
  divergenceThreshold?: number;
}

/** Result of one decision: whether to stop and why. */
export interface StoppingDecision {
  /** Whether training should stop now. */
  shouldStop: boolean;
  /** Whether this value beat the best so far. */
  improved: boolean;
  /** Why it stops, when it does. */
  reason?: string;
}

/**
 * Stops `fit` when the monitored metric stops improving for `patience` epochs (checked at the end
 * of each epoch, after validation). Unlike Lightning, it can restore the best epoch's weights.
 */
export class EarlyStopping implements Callback {
  readonly stateKey: string;
  /** Its `onTrainEpochEnd` runs after the module's, seeing what that logged (Lightning's monitoring callbacks). */
  readonly monitorsMetrics = true;
  /** Epochs without improvement tolerated. */
  readonly patience: number;
  /** The metric watched, its mode and `minDelta`. */
  readonly monitor: Monitor;
  /** Why training stopped, once it did. */
  stoppedReason?: string;
  /** The epoch training stopped in; −1 while it has not. */
  stoppedEpoch = -1;
  private best: number;
  private wait = 0;
  private bestWeights: Record<string, tf.Tensor> | null = null;

  constructor(private readonly options: EarlyStoppingOptions = {}) {
    this.monitor = new Monitor(options, 'EarlyStopping');
    this.patience = options.patience ?? 3;
    if (!Number.isInteger(this.patience) || this.patience < 0) throw new ConfigError('EarlyStopping.patience', 'a non-negative integer', options.patience);
    for (const k of ['stoppingThreshold', 'divergenceThreshold', 'baseline'] as const) {
      const v = options[k];
      if (v !== undefined && !Number.isFinite(v)) throw new ConfigError(`EarlyStopping.${k}`, 'a finite number', v);
    }
    this.best = this.initialBest();
    this.stateKey = `EarlyStopping{monitor=${this.monitor.monitor},mode=${this.monitor.mode}}`;
  }

  /** A baseline is the value to beat from the first epoch on (Keras' semantics). */
  private initialBest(): number {
    return this.options.baseline ?? this.monitor.worst;
  }

  /** Best value of the monitored metric so far (before the first: the `baseline`, or the worst value). */
  get bestScore(): number {
    return this.best;
  }

  /** The pure decision for a new value; updates nothing. */
  evaluate(current: number, wait = this.wait, best = this.best): StoppingDecision {
    const m = this.monitor;
    if ((this.options.checkFinite ?? true) && !Number.isFinite(current)) {
      return { shouldStop: true, improved: false, reason: `${m.monitor} = ${current} is not finite` };
    }
    const t = this.options.stoppingThreshold;
    if (t !== undefined && (m.mode === 'min' ? current < t : current > t)) {
      return { shouldStop: true, improved: true, reason: `${m.monitor} = ${current} reached the stopping threshold ${t}` };
    }
    const dv = this.options.divergenceThreshold;
    if (dv !== undefined && (m.mode === 'min' ? current > dv : current < dv)) {
      return { shouldStop: true, improved: false, reason: `${m.monitor} = ${current} diverged: worse than the divergence threshold ${dv}` };
    }
    if (m.improved(current, best)) return { shouldStop: false, improved: true };
    if (wait + 1 >= this.patience) {
      return { shouldStop: true, improved: false, reason: `${m.monitor} did not improve for ${wait + 1} epoch(s); best ${best}` };
    }
    return { shouldStop: false, improved: false };
  }

  onTrainStart(trainer: Trainer): void {
    // A fresh run starts over; a resumed one keeps the state loadStateDict put back.
    if (trainer.globalStep === 0) {
      this.best = this.initialBest();
      this.wait = 0;
    }
    this.stoppedReason = undefined;
    this.stoppedEpoch = -1;
  }

  onTrainEpochEnd(trainer: Trainer, module: TrainingModule): void {
    this.check(trainer, module);
  }

  /**
   * A validation inside the epoch (`valCheckInterval`) is checked like an epoch end, as Lightning
   * checks at every validation: patience counts validations.
   */
  onValidationEnd(trainer: Trainer, module: TrainingModule): void {
    if (trainer.stage === 'fit' && !trainer.sanityChecking && !trainer.epochTrainingDone) this.check(trainer, module);
  }

  private check(trainer: Trainer, module: TrainingModule): void {
    if (trainer.currentEpoch < (this.options.startFromEpoch ?? 0)) return;
    // Nothing new to judge in an epoch that did not validate (checkValEveryNEpoch > 1).
    const current = this.monitor.current(trainer, 'EarlyStopping');
    if (current === undefined) return;
    const d = this.evaluate(current);
    if (d.improved) {
      this.best = current;
      this.wait = 0;
      if (this.options.restoreBestWeights) this.keepWeights(module);
    } else {
      this.wait++;
    }
    if (d.shouldStop) {
      trainer.shouldStop = true;
      this.stoppedReason = d.reason;
      this.stoppedEpoch = trainer.currentEpoch;
    }
  }

  onTrainEnd(_t: Trainer, module: TrainingModule): void {
    if (this.options.restoreBestWeights && this.bestWeights) {
      module.model.loadStateDict(this.bestWeights);
      this.dropWeights();
    }
  }

  teardown(): void {
    this.dropWeights();
  }

  private keepWeights(module: TrainingModule): void {
    this.dropWeights();
    this.bestWeights = Object.fromEntries(Object.entries(module.model.stateDict()).map(([k, v]) => [k, tf.keep(tf.clone(v))]));
  }

  private dropWeights(): void {
    if (this.bestWeights) tf.dispose(Object.values(this.bestWeights));
    this.bestWeights = null;
  }

  /** The best epoch's weights travel in checkpoints, so a resumed run restores the same weights at its end. */
  stateTensors(): Record<string, tf.Tensor> {
    return this.options.restoreBestWeights && this.bestWeights ? this.bestWeights : {};
  }

  loadStateTensors(tensors: Record<string, tf.Tensor>): void {
    this.dropWeights();
    this.bestWeights = Object.keys(tensors).length > 0 ? tensors : null;
  }

  stateDict(): Record<string, unknown> {
    // JSON has no Infinity: store the "no best yet" state as null.
    return { wait: this.wait, best: Number.isFinite(this.best) ? this.best : null, stoppedEpoch: this.stoppedEpoch, patience: this.patience };
  }

  loadStateDict(s: Record<string, unknown>): void {
    this.wait = Number(s.wait ?? 0);
    this.best = s.best === null || s.best === undefined ? this.initialBest() : Number(s.best);
    this.stoppedEpoch = Number(s.stoppedEpoch ?? -1);
  }
}
