import { DataFormatError } from '@kiln/core';
import { ArrayDataset, isScaledBytes, type AnyArrayDataset } from './dataset.js';
import { byteLevels } from './byte-levels.js';

/** Per-channel statistics of a dataset whose examples are channels-last ([..., C]). */
export interface ChannelStats {
  /** Mean of each channel. */
  mean: number[];
  /** Population standard deviation of each channel. */
  std: number[];
}

/**
 * Mean and (population) standard deviation of every channel over all examples and positions.
 * Compute these on the training split only and reuse them for validation and test data, so no
 * information from held-out data leaks into preprocessing. Inputs held as bytes are counted in a
 * histogram of their 256 values per channel, which gives the same statistics without converting
 * them (the sums of value × count are exact where a running sum of millions of values rounds).
 */
export function channelStats(ds: AnyArrayDataset): ChannelStats {
  const c = ds.shape[ds.shape.length - 1];
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  const stored = ds.stored;
  let n: number;
  if (isScaledBytes(stored)) {
    const counts = byteCounts(stored.bytes, c);
    const levels = byteLevels(stored.scale);
    for (let k = 0; k < c; k++) {
      for (let b = 0; b < 256; b++) {
        const m = counts[k * 256 + b];
        sum[k] += m * levels[b];
        sq[k] += m * levels[b] * levels[b];
      }
    }
    n = stored.bytes.length / c;
  } else {
    for (let i = 0; i < stored.length; i++) {
      const v = stored[i];
      sum[i % c] += v;
      sq[i % c] += v * v;
    }
    n = stored.length / c;
  }
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / n - mean[k] * mean[k], 0)) || 1);
  return { mean, std };
}

/** How often each byte value occurs in each of `c` interleaved channels: `counts[channel * 256 + value]`. */
function byteCounts(bytes: Uint8Array, c: number): Float64Array {
  const counts = new Float64Array(c * 256);
  // Counted in 32-bit bins (fast increments), emptied into the float64 totals before one can
  // overflow. One channel, 4-byte aligned: four bytes per load, each lane into bins of its own so
  // that runs of equal bytes (an image's background) do not wait on one counter.
  const lanes = c === 1 && bytes.byteOffset % 4 === 0 ? 4 : 1;
  const bins = new Uint32Array(lanes * c * 256);
  const flush = () => {
    for (let j = 0; j < bins.length; j++) counts[j % (c * 256)] += bins[j];
    bins.fill(0);
  };
  const chunk = c * 2 ** 30;
  for (let start = 0; start < bytes.length; start += chunk) {
    const end = Math.min(bytes.length, start + chunk);
    let i = start;
    if (lanes === 4) {
      const words = new Uint32Array(bytes.buffer, bytes.byteOffset + start, (end - start) >> 2);
      for (let w = 0; w < words.length; w++) {
        const v = words[w];
        bins[v & 255]++;
        bins[256 + ((v >>> 8) & 255)]++;
        bins[512 + ((v >>> 16) & 255)]++;
        bins[768 + (v >>> 24)]++;
      }
      i += words.length * 4;
    }
    if (c === 1) for (; i < end; i++) bins[bytes[i]]++;
    else for (; i < end; i++) bins[(i % c) * 256 + bytes[i]]++;
    flush();
  }
  return counts;
}

/** A copy of `ds` with every channel standardised: (x − mean) / std, as float32 values. */
export function normalizeDataset<Y extends Int32Array | Float32Array>(ds: ArrayDataset<Y>, stats: ChannelStats): ArrayDataset<Y> {
  const c = stats.mean.length;
  const stored = ds.stored;
  const out = new Float32Array(isScaledBytes(stored) ? stored.bytes.length : stored.length);
  if (isScaledBytes(stored)) {
    // Each channel's 256 possible results, computed from the float32 value of each byte as the float path computes them.
    const levels = byteLevels(stored.scale);
    const table = new Float32Array(c * 256);
    for (let k = 0; k < c; k++) for (let b = 0; b < 256; b++) table[k * 256 + b] = (levels[b] - stats.mean[k]) / stats.std[k];
    for (let i = 0; i < out.length; i++) out[i] = table[(i % c) * 256 + stored.bytes[i]];
  } else {
    for (let i = 0; i < out.length; i++) out[i] = (stored[i] - stats.mean[i % c]) / stats.std[i % c];
  }
  return new ArrayDataset(out, ds.y, ds.shape, ds.classes, ds.targetShape);
}

/**
 * Reads statistics stored as JSON ({"mean": [...], "std": [...]}, e.g. from a run's summary) back,
 * checking them, so evaluation standardises with exactly the numbers training used.
 */
export function parseChannelStats(json: string, file: string): ChannelStats {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new DataFormatError(file, 'channel statistics are not valid JSON', { found: e instanceof Error ? e.message : String(e) });
  }
  const s = v as Partial<ChannelStats> | null;
  const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length > 0 && a.every((n) => typeof n === 'number' && Number.isFinite(n));
  if (!s || !ok(s.mean) || !ok(s.std) || s.mean.length !== s.std.length || s.std.some((d) => d <= 0)) {
    throw new DataFormatError(file, 'not a set of channel statistics', { expected: '{"mean": [numbers], "std": [positive numbers]} of equal length', found: json.slice(0, 120) });
  }
  return { mean: s.mean, std: s.std };
}
