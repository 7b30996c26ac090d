import type { Logger } from '../logger.js';

/**
 * Prints each epoch's metrics as one line (to stderr by default, keeping stdout for results). The
 * epoch is counted from 1 as the progress bar counts it; the `epoch` metric itself (and the CSV,
 * JSONL and TensorBoard logs) keeps the trainer's 0-based index.
 */
export class ConsoleLogger implements Logger {
  readonly name = 'console';
  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l + '\n')) {}

  logHyperparams(params: Record<string, unknown>): void {
    this.write(`hparams ${JSON.stringify(params)}`);
  }

  logMetrics(metrics: Record<string, number>): void {
    if (metrics.epoch === undefined) return;
    const parts = Object.entries(metrics)
      .filter(([k]) => k !== 'epoch')
      .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`);
    this.write(`epoch ${metrics.epoch + 1}: ${parts.join(' ')}`);
  }
}
