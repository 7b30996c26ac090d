import { createHash } from 'node:crypto';
import type { AnyArrayDataset } from './dataset.js';

/** One example that appears (byte for byte) in two splits. */
export interface Leak {
  /** Names of the two splits. */
  splits: [string, string];
  /** Index of the example in each. */
  indices: [number, number];
}

function hashExample(ds: AnyArrayDataset, i: number): string {
  // Float32 values whatever the storage, so a split held as bytes matches one held as floats.
  const v = ds.get(i).x;
  return createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
}

/**
 * Finds exact duplicates across splits: every example's content (its values, not its label) is
 * hashed with SHA-256 and each hash is looked up in the other splits. Near-duplicates (a re-encoded
 * JPEG, a shifted crop) are not found. Returns every leaking pair; an empty list means none.
 */
export function findLeaks(splits: Record<string, AnyArrayDataset>): Leak[] {
  const names = Object.keys(splits);
  const seen = new Map<string, { split: string; index: number }>();
  const leaks: Leak[] = [];
  for (const name of names) {
    const ds = splits[name];
    const own = new Map<string, number>();
    for (let i = 0; i < ds.length; i++) {
      const h = hashExample(ds, i);
      const other = seen.get(h);
      if (other) leaks.push({ splits: [other.split, name], indices: [other.index, i] });
      if (!own.has(h)) own.set(h, i);
    }
    for (const [h, i] of own) if (!seen.has(h)) seen.set(h, { split: name, index: i });
  }
  return leaks;
}
