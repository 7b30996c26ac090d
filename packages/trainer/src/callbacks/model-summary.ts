import { formatSummary, summarize, summarizeByDepth, type SummaryRow } from '@kiln/zoo';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of {@link ModelSummary}. */
export interface ModelSummaryOptions {
  /** Depth of modules listed when no `inputShape` is given (1: direct children; default 1). */
  maxDepth?: number;
  /**
   * Shape `[H, W, C]` of one input image: the model is run once on a zero image and every layer
   * is listed with its output shape and multiply-adds (`@kiln/zoo`'s `summarize`). Without it
   * the modules down to `maxDepth` are listed with their parameter counts only.
   */
  inputShape?: [number, number, number];
  /** Where to print (default stderr). */
  write?: (line: string) => void;
}

/**
 * Prints a table of the model's modules with parameter counts at the start of `fit`
 * (Lightning's ModelSummary), and the trainable / frozen totals. The rows are `@kiln/zoo`'s
 * `SummaryRow`s, as `kiln summary` prints them.
 */
export class ModelSummary implements Callback {
  /** The last summary, for inspection. */
  rows: SummaryRow[] = [];

  constructor(private readonly options: ModelSummaryOptions = {}) {}

  onFitStart(_t: Trainer, module: TrainingModule): void {
    const model = module.model;
    const write = this.options.write ?? ((l: string) => process.stderr.write(l + '\n'));
    if (this.options.inputShape) {
      const report = summarize(model, this.options.inputShape);
      this.rows = report.rows;
      for (const line of formatSummary(report)) write(line);
    } else {
      this.rows = summarizeByDepth(model, this.options.maxDepth ?? 1);
      const w = Math.max(4, ...this.rows.map((r) => r.path.length));
      const t = Math.max(4, ...this.rows.map((r) => r.type.length));
      write(`${'name'.padEnd(w)}  ${'type'.padEnd(t)}  ${'params'.padStart(10)}`);
      for (const r of this.rows) write(`${r.path.padEnd(w)}  ${r.type.padEnd(t)}  ${String(r.params).padStart(10)}`);
    }
    const total = model.numParameters();
    const trainable = model.numParameters({ trainableOnly: true });
    write(`${trainable} trainable, ${total - trainable} frozen, ${total} total parameters`);
  }
}
