import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule, StepOutput } from '../training-module.js';
import type { Batch } from '@kiln/data';

/** Options of `ProgressBar`. */
export interface ProgressBarOptions {
  /** Where to draw (default stderr, keeping stdout for results). */
  stream?: {
    /** Writes text. */
    write(s: string): unknown;
    /** True for a terminal: the bar redraws in place. */
    isTTY?: boolean;
    /** Terminal width. */
    columns?: number;
  };
  /** Steps between plain-text lines when the stream is not a terminal (default 50). */
  refreshEvery?: number;
}

/**
 * Shows steps done, rate, ETA and live metrics. On a terminal it redraws one line; elsewhere (CI,
 * log files) it prints a plain line every `refreshEvery` steps and one per epoch.
 */
export class ProgressBar implements Callback {
  private start = 0;
  private total = 0;
  private seen = 0;
  private loss = NaN;
  /** Values the module logged with `progBar: true`. */
  private extra: Record<string, number> = {};
  private readonly stream: NonNullable<ProgressBarOptions['stream']>;

  constructor(private readonly options: ProgressBarOptions = {}) {
    this.stream = options.stream ?? process.stderr;
  }

  onTrainEpochStart(trainer: Trainer): void {
    this.start = performance.now();
    this.seen = 0;
    this.total = trainer.numTrainingBatches;
  }

  /** The bar reads the step's values only in steps it draws (every step on a terminal). */
  needsStepMetrics(_trainer: Trainer, batchIdx: number): boolean {
    return this.draws(batchIdx + 1);
  }

  private draws(seen: number): boolean {
    return !!this.stream.isTTY || seen % (this.options.refreshEvery ?? 50) === 0;
  }

  onTrainBatchEnd(trainer: Trainer, _m: TrainingModule, _out: StepOutput, _b: Batch, batchIdx: number): void {
    this.seen = batchIdx + 1;
    if (!this.draws(this.seen)) return;
    const tty = !!this.stream.isTTY;
    // Already on the host: the trainer read the step's values because `needsStepMetrics` asked.
    this.loss = trainer.lastTrainMetrics.train_loss ?? NaN;
    this.extra = trainer.progressBarMetrics;
    const line = this.render(trainer);
    this.stream.write(tty ? `\r${line.slice(0, (this.stream.columns ?? 120) - 1)}` : `${line}\n`);
  }

  onTrainEpochEnd(trainer: Trainer): void {
    const m = trainer.callbackMetrics;
    const parts = Object.entries(m)
      .filter(([k]) => k !== 'epoch')
      .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    this.stream.write(`${this.stream.isTTY ? '\r' : ''}epoch ${trainer.currentEpoch + 1}: ${parts.join(', ')} (${trainer.trainSamplesPerSec.toFixed(0)} samples/s)\n`);
  }

  private render(trainer: Trainer): string {
    const secs = (performance.now() - this.start) / 1000;
    const rate = this.seen / Math.max(secs, 1e-9);
    const total = this.total || this.seen;
    const eta = total > this.seen ? (total - this.seen) / rate : 0;
    const frac = total ? this.seen / total : 0;
    const width = 20;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    return `epoch ${trainer.currentEpoch + 1} [${bar}] ${this.seen}/${total} ${rate.toFixed(1)} it/s eta ${eta.toFixed(0)}s loss ${this.loss.toFixed(4)}${Object.entries(this.extra).map(([k, v]) => ` ${k} ${v.toFixed(4)}`).join('')}`;
  }
}
