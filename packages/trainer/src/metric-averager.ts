import type { StepOutput } from './training-module.js';

/** Example-weighted running means of a stage's logged scalars; its sums go into mid-epoch checkpoints. */
export class MetricAverager {
  private sums = new Map<string, number>();
  private count = 0;

  /**
   * Adds one step's values; returns them (prefixed) as plain numbers. Reads asynchronously: WebGPU
   * in Node has no synchronous readback (`dataSync` throws there).
   */
  async add(out: StepOutput, prefix: string): Promise<Record<string, number>> {
    const now: Record<string, number> = {};
    for (const [k, v] of Object.entries(out.logs)) {
      const x = (await v.data())[0];
      now[prefix + k] = x;
      this.sums.set(prefix + k, (this.sums.get(prefix + k) ?? 0) + x * out.batchSize);
    }
    this.count += out.batchSize;
    return now;
  }

  means(): Record<string, number> {
    return Object.fromEntries([...this.sums].map(([k, s]) => [k, s / Math.max(this.count, 1)]));
  }

  stateDict(): { sums: Record<string, number>; count: number } {
    return { sums: Object.fromEntries(this.sums), count: this.count };
  }

  static fromState(s: { sums: Record<string, number>; count: number }): MetricAverager {
    const m = new MetricAverager();
    m.sums = new Map(Object.entries(s.sums));
    m.count = s.count;
    return m;
  }
}
