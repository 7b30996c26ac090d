import { ConfigError } from '@kiln/core';

/**
 * Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel Hyperparameter
 * Tuning", MLSys 2020), in the stopping form Ray Tune's `ASHAScheduler` uses: rungs sit at
 * `gracePeriod · reductionFactor^k` epochs; a trial reaching a rung is compared with the trials that
 * reached it before, and stops unless it is in their top `1 / reductionFactor`. Nothing waits for a
 * rung to fill, so workers never idle. Plain JSON, so it travels with queued trials.
 */
export interface AshaConfig {
  /** Tags the pruner's algorithm in the JSON; always `'asha'`. */
  kind: 'asha';
  /** The metric compared at each rung (e.g. `val_loss`). */
  metric: string;
  /** Whether a lower (`min`) or higher (`max`) value of `metric` is better. */
  mode: 'min' | 'max';
  /** Epochs before the first rung (default 1). */
  gracePeriod: number;
  /** η: the fraction 1/η of the trials at a rung goes on (default 3). */
  reductionFactor: number;
  /** Epochs a full trial trains; no rung at or after it, since a finished trial has nothing left to save. */
  maxEpochs?: number;
}

/** A study's early-stopping rule, as plain JSON (ASHA is the only kind so far). */
export type PrunerConfig = AshaConfig;

/** Options of {@link asha}; each one left out takes its default. */
export interface AshaOptions {
  /** The metric compared at each rung, as the trial reports it (default `val_loss`). */
  metric?: string;
  /** Whether lower or higher is better (default `max` for a metric whose name contains `acc`, else `min`). */
  mode?: 'min' | 'max';
  /** Epoch of the first rung, an integer >= 1 (default 1). */
  gracePeriod?: number;
  /** η >= 2: each rung sits at η times the previous rung's epoch, and the top 1/η of the trials reaching it go on (default 3). */
  reductionFactor?: number;
  /** Epochs a full trial trains; no rung is placed at or after it (default: no limit on rungs). */
  maxEpochs?: number;
}

/** ASHA with defaults: `val_loss`, `min` (or `max` for a metric named like `acc`), grace 1, η = 3. */
export function asha(options: AshaOptions = {}): AshaConfig {
  const metric = options.metric ?? 'val_loss';
  const gracePeriod = options.gracePeriod ?? 1;
  const reductionFactor = options.reductionFactor ?? 3;
  if (!(Number.isInteger(gracePeriod) && gracePeriod >= 1)) throw new ConfigError('asha.gracePeriod', 'an integer >= 1 (epochs)', gracePeriod);
  if (!(reductionFactor >= 2)) throw new ConfigError('asha.reductionFactor', 'a number >= 2', reductionFactor);
  return { kind: 'asha', metric, mode: options.mode ?? (/acc/.test(metric) ? 'max' : 'min'), gracePeriod, reductionFactor, ...(options.maxEpochs !== undefined ? { maxEpochs: options.maxEpochs } : {}) };
}

/** The rung (0, 1, …) whose milestone is `epoch`, or undefined between rungs. */
export function ashaRung(config: AshaConfig, epoch: number): number | undefined {
  if (config.maxEpochs !== undefined && epoch >= config.maxEpochs) return undefined;
  for (let k = 0; ; k++) {
    const milestone = Math.round(config.gracePeriod * config.reductionFactor ** k);
    if (milestone === epoch) return k;
    if (milestone > epoch) return undefined;
  }
}

/** numpy's default (linear) percentile of `values`, q in [0, 100]. */
export function percentile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/**
 * The rung decision: with `before` the values recorded at this rung by earlier trials, stop when
 * `value` is worse than their (1 − 1/η) quantile. The first trial at a rung always goes on; a
 * non-finite value counts as the worst.
 */
export function ashaShouldStop(config: AshaConfig, value: number, before: readonly number[]): boolean {
  const reward = (v: number) => (Number.isFinite(v) ? (config.mode === 'max' ? v : -v) : -Infinity);
  const others = before.map(reward).filter((r) => r !== -Infinity);
  if (others.length === 0) return before.length > 0 && reward(value) === -Infinity;
  return reward(value) < percentile(others, (1 - 1 / config.reductionFactor) * 100);
}

/**
 * Where a study's rung values live: in memory for one process, in Redis for a queue.
 * `record` stores `value` for `key` at `rung` the first time it is called for that key and returns
 * the values recorded before that first call, so a retried or resumed trial gets the same decision.
 */
export interface RungStore {
  /** Records `value` of trial task `key` at rung `rung` (first call per key only) and resolves the values recorded there before it. */
  record(rung: number, key: string, value: number): Promise<number[]>;
}

/** A {@link RungStore} in this process's memory: what the in-process executor uses; lost when the process ends. */
export function memoryRungStore(): RungStore {
  const rungs = new Map<number, { key: string; value: number }[]>();
  return {
    async record(rung, key, value) {
      const list = rungs.get(rung) ?? [];
      rungs.set(rung, list);
      let at = list.findIndex((e) => e.key === key);
      if (at < 0) at = list.push({ key, value }) - 1;
      return list.slice(0, at).map((e) => e.value);
    },
  };
}

/**
 * A trial's `report` for an executor: asks the pruner at rung milestones and remembers whether it
 * said stop. Without a pruner every report says go on.
 */
export function trialReporter(pruner: PrunerConfig | undefined, store: RungStore, key: string): {
  /** Takes the metrics of epoch `epoch` (1-based) and resolves `true` once the pruner has said stop (and on every later call). */
  report(epoch: number, metrics: Record<string, number>): Promise<boolean>;
  /** Whether the pruner has stopped this trial. */
  readonly pruned: boolean;
} {
  let pruned = false;
  return {
    get pruned() {
      return pruned;
    },
    async report(epoch, metrics) {
      if (!pruner || pruned) return pruned;
      const rung = ashaRung(pruner, epoch);
      if (rung === undefined) return false;
      const value = metrics[pruner.metric];
      if (value === undefined) throw new ConfigError('asha.metric', `a metric the trial reports (${Object.keys(metrics).join(', ')})`, pruner.metric);
      pruned = ashaShouldStop(pruner, value, await store.record(rung, key, value));
      return pruned;
    },
  };
}
