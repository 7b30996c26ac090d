import { DataFormatError } from '@kiln/core';
import { ArrayDataset, type AnyArrayDataset } from './dataset.js';

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
 * information from held-out data leaks into preprocessing.
 */
export function channelStats(ds: AnyArrayDataset): ChannelStats {
  const c = ds.shape[ds.shape.length - 1];
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  const x = ds.x;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  const n = x.length / c;
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / n - mean[k] * mean[k], 0)) || 1);
  return { mean, std };
}

/** A copy of `ds` with every channel standardised: (x − mean) / std. */
export function normalizeDataset<Y extends Int32Array | Float32Array>(ds: ArrayDataset<Y>, stats: ChannelStats): ArrayDataset<Y> {
  const c = stats.mean.length;
  const out = new Float32Array(ds.x.length);
  for (let i = 0; i < out.length; i++) out[i] = (ds.x[i] - stats.mean[i % c]) / stats.std[i % c];
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
