import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kiln/core';
import { ArrayDataset, crossValidation, groupKFold, kFold, stratifiedKFold, type Fold } from '@kiln/data';

function checkPartition(folds: Fold[], n: number): void {
  const seen = new Int32Array(n);
  for (const f of folds) {
    expect(f.train.length + f.val.length).toBe(n);
    const inVal = new Set(f.val);
    for (const i of f.train) expect(inVal.has(i)).toBe(false);
    for (const i of f.val) seen[i]++;
  }
  // Every example is validated on exactly once.
  expect(Array.from(seen).every((c) => c === 1)).toBe(true);
}

describe('k-fold splits', () => {
  it('kFold: disjoint folds covering every example, sizes differing by at most one', () => {
    const folds = kFold(23, 5, { seed: 1 });
    checkPartition(folds, 23);
    const sizes = folds.map((f) => f.val.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(Array.from(kFold(6, 3, { shuffle: false })[1].val)).toEqual([2, 3]);
    expect(() => kFold(3, 4)).toThrow(ConfigError);
  });

  it('stratifiedKFold keeps each class share in every fold', () => {
    const labels = Array.from({ length: 100 }, (_, i) => (i < 70 ? 0 : i < 90 ? 1 : 2));
    const folds = stratifiedKFold(labels, 5, { seed: 3 });
    checkPartition(folds, 100);
    for (const f of folds) {
      const counts = [0, 0, 0];
      for (const i of f.val) counts[labels[i]]++;
      expect(counts).toEqual([14, 4, 2]);
    }
  });

  it('groupKFold never puts one group in two folds', () => {
    const groups = Array.from({ length: 60 }, (_, i) => `patient-${i % 7}-${i % 2}`);
    const folds = groupKFold(groups, 4);
    checkPartition(folds, 60);
    for (const f of folds) {
      const valGroups = new Set(Array.from(f.val, (i) => groups[i]));
      for (const i of f.train) expect(valGroups.has(groups[i])).toBe(false);
    }
    expect(() => groupKFold(['a', 'a', 'b'], 3)).toThrow(/groups/);
  });

  it('crossValidation yields (train, validation) dataset pairs', () => {
    const ds = new ArrayDataset(Float32Array.from({ length: 10 }, (_, i) => i), Int32Array.from({ length: 10 }, (_, i) => i % 2), [1]);
    const pairs = [...crossValidation(ds, 5, { seed: 0 })];
    expect(pairs.length).toBe(5);
    const validated = pairs.flatMap((p) => Array.from(p.val.x)).sort((a, b) => a - b);
    expect(validated).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const p of pairs) expect(p.train.length).toBe(8);
    const strat = [...crossValidation(ds, 2, { folds: stratifiedKFold(ds.y, 2) })];
    // Five examples of each class over two folds: 2 or 3 of each class per fold.
    for (const p of strat) expect([2, 3]).toContain(Array.from(p.val.y).filter((v) => v === 1).length);
  });
});
