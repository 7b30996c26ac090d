import { describe, expect, it } from 'vitest';
import { Rng, ConfigError } from '@kiln/core';
import { RandomSampler, SequentialSampler, WeightedRandomSampler, classBalancedWeights } from '@kiln/data';

describe('samplers', () => {
  it('sequential and random orders', () => {
    expect(Array.from(new SequentialSampler(4).indices())).toEqual([0, 1, 2, 3]);
    const p = new RandomSampler(10).indices(new Rng(1));
    expect([...p].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const r = new RandomSampler(3, { replacement: true, numSamples: 50 }).indices(new Rng(1));
    expect(r.length).toBe(50);
    expect(r.every((i) => i >= 0 && i < 3)).toBe(true);
    expect(() => new RandomSampler(3, { numSamples: 4 })).toThrow(ConfigError);
  });

  it('weighted sampling with replacement follows the weights', () => {
    const s = new WeightedRandomSampler([1, 0, 3], { numSamples: 40000 });
    const idx = s.indices(new Rng(5));
    const counts = [0, 0, 0];
    for (const i of idx) counts[i]++;
    expect(counts[1]).toBe(0);
    expect(counts[2] / 40000).toBeCloseTo(0.75, 2);
  });

  it('weighted sampling without replacement never repeats and favours heavy items', () => {
    const s = new WeightedRandomSampler([100, 1, 1, 1, 0], { numSamples: 2, replacement: false });
    let heavyFirst = 0;
    const rng = new Rng(2);
    for (let t = 0; t < 200; t++) {
      const idx = s.indices(rng);
      expect(idx[0]).not.toBe(idx[1]);
      expect(Array.from(idx)).not.toContain(4);
      if (idx[0] === 0) heavyFirst++;
    }
    expect(heavyFirst).toBeGreaterThan(180);
    expect(() => new WeightedRandomSampler([1, 0], { numSamples: 2, replacement: false })).toThrow(/at most 1/);
    expect(() => new WeightedRandomSampler([-1, 2])).toThrow(ConfigError);
  });

  it('class-balanced weights are 1 / class count', () => {
    expect(Array.from(classBalancedWeights([0, 0, 0, 1]))).toEqual([1 / 3, 1 / 3, 1 / 3, 1]);
  });
});
