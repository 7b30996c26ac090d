import { ConfigError, Rng } from '@kiln/core';
import { formatTable } from './summary-table.js';

/** One dimension of a search space: draws a value from a generator. */
export interface Distribution<T = number> {
  /** How it prints in tables (`logUniform(0.0001, 0.1)`). */
  readonly describe: string;
  /** One draw. */
  sample(rng: Rng): T;
}

/** Uniform on [low, high]. */
export function uniform(low: number, high: number): Distribution {
  if (!(high > low)) throw new ConfigError('uniform', 'low < high', { low, high });
  return { describe: `uniform(${low}, ${high})`, sample: (r) => r.uniform(low, high) };
}

/** Log-uniform on [low, high] (both > 0): every decade equally likely — the scale for learning rates. */
export function logUniform(low: number, high: number): Distribution {
  if (!(low > 0 && high > low)) throw new ConfigError('logUniform', '0 < low < high', { low, high });
  return { describe: `logUniform(${low}, ${high})`, sample: (r) => Math.exp(r.uniform(Math.log(low), Math.log(high))) };
}

/** Integers in [low, high], uniformly, optionally on a log scale (for widths and batch sizes). */
export function intUniform(low: number, high: number, options: { log?: boolean } = {}): Distribution {
  if (!(Number.isInteger(low) && Number.isInteger(high) && high >= low && (!options.log || low > 0))) throw new ConfigError('intUniform', 'integers low <= high (low > 0 on a log scale)', { low, high });
  const d = options.log ? logUniform(low, high + 1) : uniform(low, high + 1);
  return { describe: `intUniform(${low}, ${high}${options.log ? ', log' : ''})`, sample: (r) => Math.min(high, Math.floor(d.sample(r))) };
}

/** One of the given values, equally likely. */
export function choice<T>(values: readonly T[]): Distribution<T> {
  if (values.length === 0) throw new ConfigError('choice', 'at least one value', values);
  return { describe: `choice(${values.join(', ')})`, sample: (r) => values[r.int(values.length)] };
}

/** Hyperparameter name → the distribution it is drawn from. */
export type SearchSpace = Record<string, Distribution<unknown>>;
/** One draw from a search space: a value per hyperparameter. */
export type Params<S extends SearchSpace> = { [K in keyof S]: S[K] extends Distribution<infer T> ? T : never };

/** Options of {@link randomSearch}. */
export interface RandomSearchOptions<S extends SearchSpace> {
  /** What to draw. */
  space: S;
  /** How many trials to run. */
  trials: number;
  /** Trains with the given parameters and returns its metrics (e.g. `trainer.callbackMetrics`). */
  objective: (params: Params<S>, trial: number) => Promise<Record<string, number>>;
  /** Metric ranking the trials (default `val_loss`). */
  monitor?: string;
  /** Default: `max` for names containing `acc`, else `min`. */
  mode?: 'min' | 'max';
  /** Seed of the sampler (default 0). */
  seed?: number;
}

/** One trial of a search. */
export interface Trial<S extends SearchSpace> {
  /** Its index, from 0. */
  trial: number;
  /** The hyperparameters drawn. */
  params: Params<S>;
  /** What the objective returned. */
  metrics: Record<string, number>;
}

/** What {@link randomSearch} returns. */
export interface RandomSearchResult<S extends SearchSpace> {
  /** In the order they ran. */
  trials: Trial<S>[];
  /** The trial with the best `monitor` value. */
  best: Trial<S>;
  /** Trials ranked best first, one row each. */
  table(): string;
}

/**
 * Random search (Bergstra & Bengio, 2012): sample each trial's hyper-parameters independently from
 * the space, run the objective, rank by the monitored metric. Trials with a non-finite score rank last.
 */
export async function randomSearch<S extends SearchSpace>(options: RandomSearchOptions<S>): Promise<RandomSearchResult<S>> {
  const { space, trials: n, objective } = options;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError('randomSearch.trials', 'a positive integer', n);
  const monitor = options.monitor ?? 'val_loss';
  const mode = options.mode ?? (/acc/.test(monitor) ? 'max' : 'min');
  const rng = new Rng(options.seed ?? 0);
  const trials: Trial<S>[] = [];
  for (let t = 0; t < n; t++) {
    const params = Object.fromEntries(Object.entries(space).map(([k, d]) => [k, d.sample(rng)])) as Params<S>;
    trials.push({ trial: t, params, metrics: await objective(params, t) });
  }
  const score = (x: Trial<S>) => {
    const v = x.metrics[monitor];
    if (v === undefined) throw new ConfigError('randomSearch.monitor', `a metric the objective returns (${Object.keys(x.metrics).join(', ')})`, monitor);
    return Number.isFinite(v) ? (mode === 'min' ? v : -v) : Infinity;
  };
  const ranked = [...trials].sort((a, b) => score(a) - score(b) || a.trial - b.trial);
  const keys = Object.keys(space);
  const metricKeys = [...new Set(trials.flatMap((x) => Object.keys(x.metrics)))].filter((k) => k !== 'epoch');
  return {
    trials,
    best: ranked[0],
    table: () =>
      formatTable(
        ['rank', 'trial', ...keys, ...metricKeys],
        ranked.map((x, i) => [i + 1, x.trial, ...keys.map((k) => x.params[k] as string | number), ...metricKeys.map((k) => x.metrics[k])]),
      ),
  };
}
