import { ConfigError } from '@kiln/core';
import { isAsyncDataset, isGatheringDataset, type Dataset, type GatheringDataset } from './dataset.js';
import { declaredSchema as schemaOf, describeSchema, type ExampleSchema } from './collate.js';

function checkIndex(name: string, index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) throw new ConfigError(`${name}.get(index)`, `an integer in [0, ${length})`, index);
}

/**
 * The wrappers below are asynchronous exactly when their source is: they define `getMany` (see
 * `AsyncDataset`) only then, so a loader still iterates a wrapped in-memory dataset synchronously.
 * Those that pass examples through unchanged (subset, concat, cache) also pass on their source's
 * `schema`, so a view of an `ArrayDataset` of float targets still collates them as float32.
 */

/** A dataset whose examples are `fn(example, index)` of another's, computed on each access. */
export class MappedDataset<T, U> implements Dataset<U> {
  /** Present when the source is an `AsyncDataset`: its batch, mapped. */
  readonly getMany?: (indices: ArrayLike<number>) => Promise<U[]>;
  constructor(
    /** The dataset wrapped. */
    readonly source: Dataset<T>,
    private readonly fn: (example: T, index: number) => U,
  ) {
    if (isAsyncDataset(source)) {
      this.getMany = async (indices) => {
        for (let k = 0; k < indices.length; k++) checkIndex('MappedDataset', indices[k], this.length);
        const examples = await source.getMany(indices);
        return examples.map((e, k) => fn(e, indices[k]));
      };
    }
  }
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
  /** Present when the source is an `AsyncDataset`: the batch at the mapped indices. */
  readonly getMany?: (indices: ArrayLike<number>) => Promise<T[]>;
  /** Present when the source is a `GatheringDataset`: its gathered batch at the mapped indices. */
  readonly gatherMany?: GatheringDataset<T>['gatherMany'];
  /** The source's schema, when it declares one. */
  readonly schema?: ExampleSchema;
  constructor(
    /** The dataset wrapped. */
    readonly source: Dataset<T>,
    indices: ArrayLike<number>,
  ) {
    this.schema = schemaOf(source);
    this.indices = Int32Array.from(indices);
    for (const i of this.indices) if (i < 0 || i >= source.length) throw new ConfigError('SubsetDataset.indices', `indices in [0, ${source.length})`, i);
    if (isAsyncDataset(source)) this.getMany = async (indices) => source.getMany(this.mapped(indices));
    if (isGatheringDataset(source)) this.gatherMany = async (indices, options) => source.gatherMany(this.mapped(indices), options);
  }
  /** Positions in the source of this subset's `indices`. */
  private mapped(indices: ArrayLike<number>): Int32Array {
    const mapped = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      checkIndex('SubsetDataset', indices[k], this.length);
      mapped[k] = this.indices[indices[k]];
    }
    return mapped;
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
  /** Present when any part is an `AsyncDataset`: each part is asked once for its share of the batch. */
  readonly getMany?: (indices: ArrayLike<number>) => Promise<T[]>;
  /** The parts' schema, when every part declares the same one. */
  readonly schema?: ExampleSchema;
  constructor(
    /** The datasets joined, in order: part 0's examples come first. */
    readonly parts: Dataset<T>[],
  ) {
    const schemas = parts.map(schemaOf);
    const first = schemas[0];
    if (first && schemas.every((s) => s && describeSchema(s.x) === describeSchema(first.x) && describeSchema(s.y) === describeSchema(first.y))) this.schema = first;
    this.offsets = [0];
    for (const p of parts) this.offsets.push(this.offsets[this.offsets.length - 1] + p.length);
    if (parts.some((p) => isAsyncDataset(p))) this.getMany = (indices) => this.fetchMany(indices);
  }
  get length(): number {
    return this.offsets[this.offsets.length - 1];
  }
  /** The part holding `index`: binary search for the last offset <= index. */
  private partOf(index: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  get(index: number): T {
    checkIndex('ConcatDataset', index, this.length);
    const p = this.partOf(index);
    return this.parts[p].get(index - this.offsets[p]);
  }
  private async fetchMany(indices: ArrayLike<number>): Promise<T[]> {
    const out = new Array<T>(indices.length);
    // Batch positions and local indices per part, so an asynchronous part gets one request.
    const byPart = new Map<number, { at: number[]; local: number[] }>();
    for (let k = 0; k < indices.length; k++) {
      checkIndex('ConcatDataset', indices[k], this.length);
      const p = this.partOf(indices[k]);
      const entry = byPart.get(p) ?? { at: [], local: [] };
      entry.at.push(k);
      entry.local.push(indices[k] - this.offsets[p]);
      byPart.set(p, entry);
    }
    await Promise.all(
      [...byPart].map(async ([p, { at, local }]) => {
        const part = this.parts[p];
        const got = isAsyncDataset(part) ? await part.getMany(local) : local.map((i) => part.get(i));
        at.forEach((k, j) => (out[k] = got[j]));
      }),
    );
    return out;
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
  /** Present when the source is an `AsyncDataset`: fetches only the examples not yet cached. */
  readonly getMany?: (indices: ArrayLike<number>) => Promise<T[]>;
  /** The source's schema, when it declares one. */
  readonly schema?: ExampleSchema;
  constructor(
    /** The dataset whose examples are cached. */
    readonly source: Dataset<T>,
  ) {
    this.schema = schemaOf(source);
    this.cache = new Array<T | undefined>(source.length);
    this.filled = new Uint8Array(source.length);
    if (isAsyncDataset(source)) {
      this.getMany = async (indices) => {
        const missing: number[] = [];
        for (let k = 0; k < indices.length; k++) {
          checkIndex('CachedDataset', indices[k], this.length);
          if (!this.filled[indices[k]]) missing.push(indices[k]);
        }
        if (missing.length > 0) {
          const got = await source.getMany(missing);
          missing.forEach((i, j) => {
            this.cache[i] = got[j];
            this.filled[i] = 1;
          });
        }
        return Array.from(indices, (i) => this.cache[i] as T);
      };
    }
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
