// The example of docs/custom-callbacks.md, kept as a tested file so the guide cannot rot.
import { KilnError } from '@kiln/core';
import { inject, injectable, type InjectionToken } from 'tsyringe';
// In your project: `from '@kiln/trainer'`.
import type { Callback, Trainer, TrainingModule } from '../../src/index.js';

/** Options, documented field by field. */
export interface LossSpikeGuardOptions {
  /** Smoothing of the running loss average, in (0, 1): higher follows the loss faster (default 0.1). */
  alpha?: number;
  /** A step whose loss exceeds `factor ×` the running average is a spike (default 3). */
  factor?: number;
  /** Spikes tolerated over the whole run before training stops (default 5). */
  maxSpikes?: number;
}

/** Token under which a run provides the options (see `provide` in the guide). */
export const LOSS_SPIKE_OPTIONS: InjectionToken<LossSpikeGuardOptions> = Symbol('example.lossSpikeOptions');

/**
 * Watches the training loss for sudden spikes (a sign of a too-high learning rate or a bad batch)
 * and stops training after too many. Its running average and spike count are state: they go into
 * checkpoints, so a resumed run keeps counting where it stopped.
 */
@injectable()
export class LossSpikeGuard implements Callback {
  readonly stateKey = 'LossSpikeGuard';
  readonly alpha: number;
  readonly factor: number;
  readonly maxSpikes: number;
  /** Run state: reset at the start of a fresh run, saved in checkpoints. */
  ema: number | null = null;
  spikes: number[] = [];

  constructor(@inject(LOSS_SPIKE_OPTIONS) options: LossSpikeGuardOptions = {}) {
    this.alpha = options.alpha ?? 0.1;
    this.factor = options.factor ?? 3;
    this.maxSpikes = options.maxSpikes ?? 5;
    if (!(this.alpha > 0 && this.alpha < 1)) throw new KilnError('E_CONFIG', 'LossSpikeGuard.alpha must be in (0, 1)', { found: String(this.alpha) });
  }

  onTrainStart(trainer: Trainer): void {
    if (trainer.globalStep === 0) {
      this.ema = null;
      this.spikes = [];
    }
  }

  /** Reads every step's loss: the trainer copies the step's values to the host for it (one read, shared). */
  needsStepMetrics(): boolean {
    return true;
  }

  onTrainBatchEnd(trainer: Trainer, _module: TrainingModule): void {
    // The trainer already copied the step's metrics to the host (needsStepMetrics): no tensor sync here.
    const loss = trainer.lastTrainMetrics.train_loss;
    if (loss === undefined) return;
    if (this.ema !== null && loss > this.factor * this.ema) {
      this.spikes.push(trainer.globalStep);
      if (this.spikes.length > this.maxSpikes) trainer.shouldStop = true;
    }
    this.ema = this.ema === null ? loss : this.alpha * loss + (1 - this.alpha) * this.ema;
  }

  stateDict(): Record<string, unknown> {
    return { ema: this.ema, spikes: this.spikes };
  }

  loadStateDict(state: Record<string, unknown>): void {
    this.ema = (state.ema as number | null) ?? null;
    this.spikes = [...((state.spikes as number[]) ?? [])];
  }
}
