import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of {@link ModelSummary}. */
export interface ModelSummaryOptions {
  /** Depth of modules listed (1: direct children; default 1). */
  maxDepth?: number;
  /** Where to print (default stderr). */
  write?: (line: string) => void;
}

/** One row of the summary. */
export interface SummaryRow {
  /** Dotted path of the module. */
  name: string;
  /** Its class. */
  type: string;
  /** Parameter values below it. */
  params: number;
  /** Of those, the trainable ones. */
  trainable: number;
}

/**
 * Prints a table of the model's modules with parameter counts at the start of `fit`
 * (Lightning's ModelSummary), and the trainable / frozen totals.
 */
export class ModelSummary implements Callback {
  /** The last summary, for inspection. */
  rows: SummaryRow[] = [];

  constructor(private readonly options: ModelSummaryOptions = {}) {}

  /** Rows for the children down to `maxDepth`, each counting all parameters beneath it. */
  summarize(module: TrainingModule): SummaryRow[] {
    const depth = this.options.maxDepth ?? 1;
    const params = module.model.namedParameters();
    const prefixes = new Set<string>();
    for (const [name] of params) {
      const parts = name.split('.').slice(0, -1);
      for (let d = 1; d <= Math.min(depth, parts.length); d++) prefixes.add(parts.slice(0, d).join('.'));
    }
    return [...prefixes].map((prefix) => {
      const mine = params.filter(([n]) => n.startsWith(prefix + '.'));
      return {
        name: prefix,
        type: module.model.getModule(prefix).typeName,
        params: mine.reduce((a, [, p]) => a + p.variable.size, 0),
        trainable: mine.filter(([, p]) => p.trainable).reduce((a, [, p]) => a + p.variable.size, 0),
      };
    });
  }

  onFitStart(_t: Trainer, module: TrainingModule): void {
    this.rows = this.summarize(module);
    const write = this.options.write ?? ((l: string) => process.stderr.write(l + '\n'));
    const w = Math.max(4, ...this.rows.map((r) => r.name.length));
    const t = Math.max(4, ...this.rows.map((r) => r.type.length));
    write(`${'name'.padEnd(w)}  ${'type'.padEnd(t)}  ${'params'.padStart(10)}`);
    for (const r of this.rows) write(`${r.name.padEnd(w)}  ${r.type.padEnd(t)}  ${String(r.params).padStart(10)}`);
    const total = module.model.numParameters();
    const trainable = module.model.numParameters({ trainableOnly: true });
    write(`${trainable} trainable, ${total - trainable} frozen, ${total} total parameters`);
  }
}
