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
