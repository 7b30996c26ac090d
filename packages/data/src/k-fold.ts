import { Rng, ConfigError } from '@kiln/core';
import type { ArrayDataset } from './dataset.js';

/** One fold: the indices to train on and the indices to validate on (disjoint, each sorted). */
/** One split of a k-fold partition: example indices to train on and to validate on. */
export interface Fold {
  /** Indices of the training examples. */
  train: Int32Array;
  /** Indices of the held-out examples. */
  val: Int32Array;
}

/** Options of {@link kFold}. */
export interface KFoldOptions {
  /** Shuffle before assigning folds (default true); otherwise folds are consecutive blocks. */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
}

function checkK(k: number, n: number, what: string): void {
  if (!(Number.isInteger(k) && k >= 2)) throw new ConfigError(`${what}.k`, 'an integer >= 2', k);
  if (k > n) throw new ConfigError(`${what}.k`, `at most the number of ${what === 'groupKFold' ? 'groups' : 'examples'} (${n})`, k);
}

/** Turns a fold number per example into k (train, validation) index pairs. */
function foldsFrom(assign: Int32Array, k: number): Fold[] {
  const folds: Fold[] = [];
  for (let f = 0; f < k; f++) {
    const val: number[] = [];
    const train: number[] = [];
    for (let i = 0; i < assign.length; i++) (assign[i] === f ? val : train).push(i);
    folds.push({ train: Int32Array.from(train), val: Int32Array.from(val) });
  }
  return folds;
}

/** k folds of (almost) equal size: every example is validated on exactly once. */
export function kFold(n: number, k: number, options: KFoldOptions = {}): Fold[] {
  checkK(k, n, 'kFold');
  const order = options.shuffle === false ? Int32Array.from({ length: n }, (_, i) => i) : new Rng(options.seed ?? 0).permutation(n);
  const assign = new Int32Array(n);
  // The first n mod k folds get one extra example.
  const base = Math.floor(n / k);
  const extra = n % k;
  let at = 0;
  for (let f = 0; f < k; f++) {
    const size = base + (f < extra ? 1 : 0);
    for (let j = 0; j < size; j++) assign[order[at++]] = f;
  }
  return foldsFrom(assign, k);
}

/**
 * k folds that keep each class's share: the examples of every class are shuffled and dealt round-robin
 * to the folds (continuing where the previous class stopped), so each fold holds ⌊n_c/k⌋ or ⌈n_c/k⌉
 * examples of class c and the fold sizes differ by at most one.
 */
export function stratifiedKFold(labels: ArrayLike<number>, k: number, options: KFoldOptions = {}): Fold[] {
  const n = labels.length;
  checkK(k, n, 'stratifiedKFold');
  const rng = new Rng(options.seed ?? 0);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const list = byClass.get(labels[i]) ?? [];
    list.push(i);
    byClass.set(labels[i], list);
  }
  const assign = new Int32Array(n);
  let f = 0;
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = byClass.get(c) as number[];
    if (options.shuffle !== false) rng.shuffle(members);
    for (const i of members) {
      assign[i] = f;
      f = (f + 1) % k;
    }
  }
  return foldsFrom(assign, k);
}

/**
 * k folds in which no group (one patient, one recording session) is split: every example of a group
 * lands in the same fold. Groups are placed largest first into the currently smallest fold, which
 * keeps the fold sizes close.
 */
export function groupKFold(groups: ArrayLike<number | string>, k: number): Fold[] {
  const n = groups.length;
  const members = new Map<number | string, number[]>();
  for (let i = 0; i < n; i++) {
    const list = members.get(groups[i]) ?? [];
    list.push(i);
    members.set(groups[i], list);
  }
  checkK(k, members.size, 'groupKFold');
  const order = [...members.entries()].sort((a, b) => b[1].length - a[1].length || String(a[0]).localeCompare(String(b[0])));
  const sizes = new Array<number>(k).fill(0);
  const assign = new Int32Array(n);
  for (const [, idx] of order) {
    let f = 0;
    for (let j = 1; j < k; j++) if (sizes[j] < sizes[f]) f = j;
    for (const i of idx) assign[i] = f;
    sizes[f] += idx.length;
  }
  return foldsFrom(assign, k);
}

/**
 * k-fold cross-validation: yields (train, validation) dataset pairs, fold by fold. Pass `folds` from
 * `stratifiedKFold` or `groupKFold` to control the assignment; by default folds are `kFold`'s.
 */
export function* crossValidation<Y extends Int32Array | Float32Array>(ds: ArrayDataset<Y>, k: number, options: KFoldOptions & { folds?: Fold[] } = {}): Generator<{
  /** Fold number, from 0. */
  fold: number;
  /** Copy of the examples outside this fold. */
  train: ArrayDataset<Y>;
  /** Copy of this fold's held-out examples. */
  val: ArrayDataset<Y>;
}> {
  const folds = options.folds ?? kFold(ds.length, k, options);
  for (let f = 0; f < folds.length; f++) yield { fold: f, train: ds.subset(folds[f].train), val: ds.subset(folds[f].val) };
}
