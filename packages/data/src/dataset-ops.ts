import { ConfigError } from '@kiln/core';
import type { Dataset } from './dataset.js';

function checkIndex(name: string, index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) throw new ConfigError(`${name}.get(index)`, `an integer in [0, ${length})`, index);
}

/** A dataset whose examples are `fn(example, index)` of another's, computed on each access. */
export class MappedDataset<T, U> implements Dataset<U> {
  constructor(
    /** The dataset wrapped. */
    readonly source: Dataset<T>,
    private readonly fn: (example: T, index: number) => U,
  ) {}
  get length(): number {
    return this.source.length;
  }
  get(index: number): U {
    checkIndex('MappedDataset', index, this.length);
    return this.fn(this.source.get(index), index);
  }
}

/** The examples of `source` at `indices`, in that order (a view: nothing is copied). */
export class SubsetDataset<T> implements Dataset<T> {
  /** The positions in `source` this subset exposes, in order. */
  readonly indices: Int32Array;
  constructor(
    /** The dataset wrapped. */
    readonly source: Dataset<T>,
    indices: ArrayLike<number>,
  ) {
    this.indices = Int32Array.from(indices);
    for (const i of this.indices) if (i < 0 || i >= source.length) throw new ConfigError('SubsetDataset.indices', `indices in [0, ${source.length})`, i);
  }
  get length(): number {
    return this.indices.length;
  }
  get(index: number): T {
    checkIndex('SubsetDataset', index, this.length);
    return this.source.get(this.indices[index]);
  }
}

/** Several datasets one after another; index `i` falls in the first part whose range holds it. */
export class ConcatDataset<T> implements Dataset<T> {
  /** Cumulative lengths: part k holds indices [offsets[k], offsets[k + 1]). */
  private readonly offsets: number[];
  /** Builds the concatenation of `parts`, in order. */
  constructor(
    /** The datasets joined, in order. */
    readonly parts: Dataset<T>[],
  ) {
    this.offsets = [0];
    for (const p of parts) this.offsets.push(this.offsets[this.offsets.length - 1] + p.length);
  }
  get length(): number {
    return this.offsets[this.offsets.length - 1];
  }
  get(index: number): T {
    checkIndex('ConcatDataset', index, this.length);
    // Binary search for the last offset <= index.
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.parts[lo].get(index - this.offsets[lo]);
  }
}

/**
 * Remembers each example the first time it is read, so an expensive `map` (decoding, resizing)
 * runs once per example rather than once per epoch. Holds every example read, so use it on data
 * that fits in memory.
 */
export class CachedDataset<T> implements Dataset<T> {
  private readonly cache: (T | undefined)[];
  private readonly filled: Uint8Array;
  /** Caches the examples of `source` as they are first read. */
  constructor(
    /** The dataset whose examples are cached. */
    readonly source: Dataset<T>,
  ) {
    this.cache = new Array<T | undefined>(source.length);
    this.filled = new Uint8Array(source.length);
  }
  get length(): number {
    return this.source.length;
  }
  get(index: number): T {
    checkIndex('CachedDataset', index, this.length);
    if (!this.filled[index]) {
      this.cache[index] = this.source.get(index);
      this.filled[index] = 1;
    }
    return this.cache[index] as T;
  }
}

/** `fn` applied lazily to every example of `ds`. */
export function mapDataset<T, U>(ds: Dataset<T>, fn: (example: T, index: number) => U): Dataset<U> {
  return new MappedDataset(ds, fn);
}

/** The examples for which `keep` holds; the predicate runs once over the whole dataset, now. */
export function filterDataset<T>(ds: Dataset<T>, keep: (example: T, index: number) => boolean): SubsetDataset<T> {
  const kept: number[] = [];
  for (let i = 0; i < ds.length; i++) if (keep(ds.get(i), i)) kept.push(i);
  return new SubsetDataset(ds, kept);
}

/** The examples of `ds` at `indices` (a view). */
export function subsetDataset<T>(ds: Dataset<T>, indices: ArrayLike<number>): SubsetDataset<T> {
  return new SubsetDataset(ds, indices);
}

/** `parts` concatenated in order. */
export function concatDatasets<T>(...parts: Dataset<T>[]): ConcatDataset<T> {
  return new ConcatDataset(parts);
}

/** `ds` with each example kept after its first read. */
export function cacheDataset<T>(ds: Dataset<T>): CachedDataset<T> {
  return new CachedDataset(ds);
}
