import { ConfigError, Rng } from '@kiln/core';
import { runStudy, type SearchResult, type StudyOptions } from './study.js';

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

/** Options of {@link randomSearch}: what to draw and how many trials, plus how trials run and are ranked. */
export interface RandomSearchOptions<S extends SearchSpace> extends StudyOptions<Params<S>> {
  /** What to draw. */
  space: S;
  /** How many trials to run. */
  trials: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
}

/** What {@link randomSearch} returns: the trials with their drawn parameters, ranked. */
export type RandomSearchResult<S extends SearchSpace> = SearchResult<Params<S>>;

/**
 * Random search (Bergstra & Bengio, 2012): sample each trial's hyper-parameters independently from
 * the space, run the objective on the executor, rank by the monitored metric. Trials with a
 * non-finite score rank last among their status. The samples depend only on the seed, so the same
 * study on any executor trains the same trials.
 */
export async function randomSearch<S extends SearchSpace>(options: RandomSearchOptions<S>): Promise<RandomSearchResult<S>> {
  const { space, trials: n } = options;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError('randomSearch.trials', 'a positive integer', n);
  const rng = new Rng(options.seed ?? 0);
  const paramsList = Array.from({ length: n }, () => Object.fromEntries(Object.entries(space).map(([k, d]) => [k, d.sample(rng)])) as Params<S>);
  return runStudy(paramsList, Object.keys(space), options);
}
