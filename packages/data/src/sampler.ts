import { ConfigError, type Rng } from '@kiln/core';

/**
 * Decides which dataset indices one epoch visits and in what order. A sampler draws only from the
 * generator it is given, so the loader can replay an epoch from a saved generator state.
 */
export interface Sampler {
  /** Indices per epoch. */
  readonly length: number;
  /** One epoch's indices. */
  indices(rng: Rng): Int32Array;
}

/** 0, 1, …, n − 1 every epoch. */
export class SequentialSampler implements Sampler {
  constructor(readonly length: number) {}
  indices(): Int32Array {
    const o = new Int32Array(this.length);
    for (let i = 0; i < o.length; i++) o[i] = i;
    return o;
  }
}

/** Options of {@link RandomSampler}. */
export interface RandomSamplerOptions {
  /** Draw with replacement (default false: a permutation). */
  replacement?: boolean;
  /** Indices per epoch (default: the dataset size). Without replacement it must not exceed it. */
  numSamples?: number;
}

/** A fresh random order every epoch: a permutation, or uniform draws with replacement. */
export class RandomSampler implements Sampler {
  readonly length: number;
  /** Whether indices are drawn with replacement. */
  readonly replacement: boolean;
  constructor(
    /** Size of the dataset sampled. */
    readonly size: number,
    options: RandomSamplerOptions = {},
  ) {
    this.replacement = options.replacement ?? false;
    this.length = options.numSamples ?? size;
    if (!Number.isInteger(this.length) || this.length < 0) throw new ConfigError('RandomSampler.numSamples', 'a non-negative integer', options.numSamples);
    if (!this.replacement && this.length > size) throw new ConfigError('RandomSampler.numSamples', `at most ${size} without replacement`, this.length);
  }
  indices(rng: Rng): Int32Array {
    if (this.replacement) {
      const o = new Int32Array(this.length);
      for (let i = 0; i < o.length; i++) o[i] = rng.int(this.size);
      return o;
    }
    return rng.permutation(this.size).slice(0, this.length);
  }
}

/** Options of {@link WeightedRandomSampler}. */
export interface WeightedRandomSamplerOptions {
  /** Indices per epoch (default: the number of weights). */
  numSamples?: number;
  /** Draw with replacement (default true). Without it, each index appears at most once. */
  replacement?: boolean;
}

/**
 * Draws index i with probability proportional to `weights[i]`. With replacement it inverts the
 * cumulative distribution by binary search; without, it uses Efraimidis–Spirakis keys u^(1/w)
 * (the numSamples largest keys are a weighted sample without replacement).
 */
export class WeightedRandomSampler implements Sampler {
  readonly length: number;
  /** Whether indices are drawn with replacement. */
  readonly replacement: boolean;
  private readonly weights: Float64Array;
  private readonly cdf: Float64Array;

  constructor(weights: ArrayLike<number>, options: WeightedRandomSamplerOptions = {}) {
    this.weights = Float64Array.from(weights);
    this.replacement = options.replacement ?? true;
    this.length = options.numSamples ?? this.weights.length;
    this.cdf = new Float64Array(this.weights.length);
    let total = 0;
    let positive = 0;
    for (let i = 0; i < this.weights.length; i++) {
      const w = this.weights[i];
      if (!Number.isFinite(w) || w < 0) throw new ConfigError(`WeightedRandomSampler.weights[${i}]`, 'a finite number >= 0', w);
      if (w > 0) positive++;
      total += w;
      this.cdf[i] = total;
    }
    if (!(total > 0)) throw new ConfigError('WeightedRandomSampler.weights', 'at least one positive weight', Array.from(weights).slice(0, 8));
    if (!Number.isInteger(this.length) || this.length < 0) throw new ConfigError('WeightedRandomSampler.numSamples', 'a non-negative integer', options.numSamples);
    if (!this.replacement && this.length > positive) throw new ConfigError('WeightedRandomSampler.numSamples', `at most ${positive} (the positive weights) without replacement`, this.length);
  }

  indices(rng: Rng): Int32Array {
    const o = new Int32Array(this.length);
    const n = this.weights.length;
    if (this.replacement) {
      const total = this.cdf[n - 1];
      for (let k = 0; k < o.length; k++) {
        const u = rng.next() * total;
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.cdf[mid] > u) hi = mid;
          else lo = mid + 1;
        }
        o[k] = lo;
      }
      return o;
    }
    const keys: { i: number; key: number }[] = [];
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      if (this.weights[i] > 0) keys.push({ i, key: Math.log(u || Number.MIN_VALUE) / this.weights[i] });
    }
    keys.sort((a, b) => b.key - a.key);
    for (let k = 0; k < o.length; k++) o[k] = keys[k].i;
    return o;
  }
}

/**
 * Weights that make every class equally likely to be drawn: example i gets 1 / count(label_i).
 * Feed them to `WeightedRandomSampler` to rebalance an imbalanced training set.
 */
export function classBalancedWeights(labels: ArrayLike<number>): Float64Array {
  const counts = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) counts.set(labels[i], (counts.get(labels[i]) ?? 0) + 1);
  const w = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) w[i] = 1 / (counts.get(labels[i]) as number);
  return w;
}

/** A with-replacement sampler that draws each class equally often in expectation. */
export function classWeightedSampler(labels: ArrayLike<number>, options: WeightedRandomSamplerOptions = {}): WeightedRandomSampler {
  return new WeightedRandomSampler(classBalancedWeights(labels), options);
}
