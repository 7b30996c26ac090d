import { Rng, ConfigError } from '@kiln/core';
import { ArrayDataset, type AnyArrayDataset, type Dataset } from './dataset.js';
import { SubsetDataset } from './dataset-ops.js';

/**
 * The examples of `ds` at `indices`: an in-memory copy for an `ArrayDataset` (so the parent may be
 * dropped), a view for any other dataset (which then keeps its asynchronous `getMany`, if it has one).
 */
function part<T>(ds: Dataset<T>, indices: Int32Array): AnyArrayDataset | SubsetDataset<T> {
  return ds instanceof ArrayDataset ? ds.subset(indices) : new SubsetDataset(ds, indices);
}

/**
 * Splits a dataset into two disjoint parts, the second holding `fraction` (or, if ≥ 1, that many
 * examples) drawn at random under `seed`. Each part keeps the original order.
 */
export function holdOut<Y extends Int32Array | Float32Array>(ds: ArrayDataset<Y>, fraction: number, seed?: number): [ArrayDataset<Y>, ArrayDataset<Y>];
export function holdOut<T>(ds: Dataset<T>, fraction: number, seed?: number): [SubsetDataset<T>, SubsetDataset<T>];
export function holdOut<T>(ds: Dataset<T>, fraction: number, seed = 0): [AnyArrayDataset | SubsetDataset<T>, AnyArrayDataset | SubsetDataset<T>] {
  const n = fraction >= 1 ? Math.floor(fraction) : Math.round(ds.length * fraction);
  if (!(fraction > 0) || n >= ds.length) throw new ConfigError('holdOut.fraction', `a fraction in (0, 1) or a count below ${ds.length}`, fraction);
  const perm = new Rng(seed).permutation(ds.length);
  const held = perm.subarray(0, n).slice().sort();
  const kept = perm.subarray(n).slice().sort();
  return [part(ds, kept), part(ds, held)];
}

/**
 * Three disjoint parts — train, validation, test — with the given fractions of the examples (they
 * must sum to 1), drawn at random under `seed`. Each part keeps the original order.
 */
export function trainValTestSplit<Y extends Int32Array | Float32Array>(ds: ArrayDataset<Y>, fractions: [number, number, number], seed?: number): [ArrayDataset<Y>, ArrayDataset<Y>, ArrayDataset<Y>];
export function trainValTestSplit<T>(ds: Dataset<T>, fractions: [number, number, number], seed?: number): [SubsetDataset<T>, SubsetDataset<T>, SubsetDataset<T>];
export function trainValTestSplit<T>(ds: Dataset<T>, fractions: [number, number, number], seed = 0): (AnyArrayDataset | SubsetDataset<T>)[] {
  const sum = fractions[0] + fractions[1] + fractions[2];
  if (fractions.some((f) => !(f >= 0)) || Math.abs(sum - 1) > 1e-9) throw new ConfigError('trainValTestSplit.fractions', 'three fractions >= 0 that sum to 1', fractions);
  const nVal = Math.round(ds.length * fractions[1]);
  const nTest = Math.round(ds.length * fractions[2]);
  if (nVal + nTest > ds.length) throw new ConfigError('trainValTestSplit.fractions', `at most ${ds.length} held-out examples`, fractions);
  const perm = new Rng(seed).permutation(ds.length);
  const sorted = (a: Int32Array) => a.slice().sort();
  return [part(ds, sorted(perm.subarray(nVal + nTest))), part(ds, sorted(perm.subarray(0, nVal))), part(ds, sorted(perm.subarray(nVal, nVal + nTest)))];
}
