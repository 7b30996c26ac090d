import { Rng, ConfigError } from '@kiln/core';
import type { ArrayDataset } from './dataset.js';

/**
 * Splits a dataset into two disjoint parts, the second holding `fraction` (or, if ≥ 1, that many
 * examples) drawn at random under `seed`.
 */
export function holdOut(ds: ArrayDataset, fraction: number, seed = 0): [ArrayDataset, ArrayDataset] {
  const n = fraction >= 1 ? Math.floor(fraction) : Math.round(ds.length * fraction);
  if (!(fraction > 0) || n >= ds.length) throw new ConfigError('holdOut.fraction', `a fraction in (0, 1) or a count below ${ds.length}`, fraction);
  const perm = new Rng(seed).permutation(ds.length);
  const held = perm.subarray(0, n).slice().sort();
  const kept = perm.subarray(n).slice().sort();
  return [ds.subset(kept), ds.subset(held)];
}

/**
 * Three disjoint parts — train, validation, test — with the given fractions of the examples (they
 * must sum to 1), drawn at random under `seed`. Each part keeps the original order.
 */
export function trainValTestSplit(ds: ArrayDataset, fractions: [number, number, number], seed = 0): [ArrayDataset, ArrayDataset, ArrayDataset] {
  const sum = fractions[0] + fractions[1] + fractions[2];
  if (fractions.some((f) => !(f >= 0)) || Math.abs(sum - 1) > 1e-9) throw new ConfigError('trainValTestSplit.fractions', 'three fractions >= 0 that sum to 1', fractions);
  const nVal = Math.round(ds.length * fractions[1]);
  const nTest = Math.round(ds.length * fractions[2]);
  if (nVal + nTest > ds.length) throw new ConfigError('trainValTestSplit.fractions', `at most ${ds.length} held-out examples`, fractions);
  const perm = new Rng(seed).permutation(ds.length);
  const sorted = (a: Int32Array) => a.slice().sort();
  return [ds.subset(sorted(perm.subarray(nVal + nTest))), ds.subset(sorted(perm.subarray(0, nVal))), ds.subset(sorted(perm.subarray(nVal, nVal + nTest)))];
}
