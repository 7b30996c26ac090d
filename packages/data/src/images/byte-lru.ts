/** What a cache holds and did, in its own accounting. */
export interface CacheStats {
  /** Bytes held now (sum of the values' byteLength). */
  bytes: number;
  /** The bound `bytes` never exceeds. */
  capacity: number;
  /** Values held now. */
  entries: number;
  /** Lookups that found their key, since the cache was made. */
  hits: number;
  /** Lookups that did not find their key, since the cache was made. */
  misses: number;
  /** Values dropped (least recently used first) to stay within `capacity`; `clear()` does not count. */
  evictions: number;
}

/**
 * A least-recently-used cache of typed arrays (or anything with a `byteLength`) bounded by their total byte length. A Map keeps
 * insertion order, so re-inserting on every hit makes its first key the least recently used.
 * Values larger than the whole capacity are not stored.
 */
export class ByteLru<K, V extends { readonly byteLength: number } = Float32Array> {
  private readonly map = new Map<K, V>();
  private held = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  /** Whether `key` is held (no effect on recency or counts). */
  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): void {
    if (value.byteLength > this.capacity) return;
    const old = this.map.get(key);
    if (old) {
      this.held -= old.byteLength;
      this.map.delete(key);
    }
    this.map.set(key, value);
    this.held += value.byteLength;
    for (const [k, v] of this.map) {
      if (this.held <= this.capacity) break;
      this.map.delete(k);
      this.held -= v.byteLength;
      this.evictions++;
    }
  }

  clear(): void {
    this.map.clear();
    this.held = 0;
  }

  stats(): CacheStats {
    return { bytes: this.held, capacity: this.capacity, entries: this.map.size, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }
}
