import { tf, ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of `StochasticWeightAveraging`. */
export interface StochasticWeightAveragingOptions {
  /** First epoch (0-based) whose end weights enter the average; a fraction of maxEpochs if < 1 (default 0.8). */
  swaEpochStart?: number;
  /** Learning rate held from `swaEpochStart` on (default: leave the rate alone). */
  swaLr?: number;
}

/**
 * Stochastic Weight Averaging (Izmailov et al., 2018): from `swaEpochStart`, keep the running mean
 * of the weights at each epoch end, w̄ ← w̄ + (w − w̄)/(n + 1), and put the mean into the model when
 * training ends. Buffers (batch-norm statistics) are averaged too; re-estimate them on training
 * data if the model has batch norm.
 */
export class StochasticWeightAveraging implements Callback {
  readonly stateKey = 'StochasticWeightAveraging';
  private average: Record<string, tf.Tensor> | null = null;
  /** Host copy of `average` for checkpoints, read asynchronously (GPU backends refuse sync reads). */
  private host: Record<string, { shape: number[]; data: number[] }> | null = null;
  private count = 0;

  constructor(private readonly options: StochasticWeightAveragingOptions = {}) {
    const s = options.swaEpochStart ?? 0.8;
    if (!(s >= 0) || (s >= 1 && !Number.isInteger(s))) throw new ConfigError('StochasticWeightAveraging.swaEpochStart', 'a fraction in [0, 1) or an epoch number', s);
    if (options.swaLr !== undefined && !(options.swaLr > 0)) throw new ConfigError('StochasticWeightAveraging.swaLr', 'a positive number', options.swaLr);
  }

  /** Models averaged so far. */
  get averaged(): number {
    return this.count;
  }

  private startEpoch(trainer: Trainer): number {
    const s = this.options.swaEpochStart ?? 0.8;
    return s < 1 ? Math.floor(s * Math.max(trainer.options.maxEpochs, 1)) : s;
  }

  onTrainStart(trainer: Trainer): void {
    if (trainer.globalStep === 0) this.reset();
  }

  onTrainEpochStart(trainer: Trainer): void {
    if (this.options.swaLr !== undefined && trainer.currentEpoch >= this.startEpoch(trainer)) trainer.optimizerConfig!.optimizer.setLr(this.options.swaLr);
  }

  async onTrainEpochEnd(trainer: Trainer, module: TrainingModule): Promise<void> {
    if (trainer.currentEpoch < this.startEpoch(trainer)) return;
    const sd = module.model.stateDict();
    const n = this.count;
    const next = tf.tidy(() =>
      Object.fromEntries(Object.entries(sd).map(([k, w]) => {
        const wf = tf.cast(w, 'float32');
        return [k, this.average ? tf.add(this.average[k], tf.div(tf.sub(wf, this.average[k]), n + 1)) : tf.clone(wf)];
      })),
    );
    this.reset();
    this.average = next;
    this.count = n + 1;
    const host: Record<string, { shape: number[]; data: number[] }> = {};
    for (const [k, t] of Object.entries(next)) host[k] = { shape: [...t.shape], data: Array.from(await t.data()) };
    this.host = host;
  }

  onTrainEnd(_t: Trainer, module: TrainingModule): void {
    if (this.average) module.model.loadStateDict(this.average);
  }

  /** Frees the running mean; `averaged` still tells how many models went into it. */
  teardown(): void {
    if (this.average) tf.dispose(Object.values(this.average));
    this.average = null;
  }

  private reset(): void {
    if (this.average) tf.dispose(Object.values(this.average));
    this.average = null;
    this.host = null;
    this.count = 0;
  }

  stateDict(): Record<string, unknown> {
    // The running mean as plain arrays, so it travels in the JSON metadata (the host copy made at
    // the epoch's end: no synchronous read here).
    return { count: this.count, average: this.host };
  }

  loadStateDict(s: Record<string, unknown>): void {
    this.reset();
    const avg = s.average as Record<string, { shape: number[]; data: number[] }> | null;
    if (avg) this.average = Object.fromEntries(Object.entries(avg).map(([k, v]) => [k, tf.tensor(v.data, v.shape, 'float32')]));
    this.host = avg;
    this.count = Number(s.count ?? 0);
  }
}
