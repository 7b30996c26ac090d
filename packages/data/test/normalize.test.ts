import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { DataFormatError } from '@kiln/core';
import { ArrayDataset, DEBIAN_FASHION_MNIST_DIR, channelStats, fashionMnist, normalizeDataset, parseChannelStats } from '@kiln/data';

describe('per-channel normalisation', () => {
  it('channel statistics are the population mean and std of each channel', () => {
    // Two channels: [1, 3, 5, 7] and [10, 10, 10, 10] (std 0 → 1, so constant channels pass through).
    const ds = new ArrayDataset(Float32Array.from([1, 10, 3, 10, 5, 10, 7, 10]), Int32Array.from([0, 1]), [2, 1, 2]);
    const s = channelStats(ds);
    expect(s.mean).toEqual([4, 10]);
    expect(s.std[0]).toBeCloseTo(Math.sqrt(5), 10);
    expect(s.std[1]).toBe(1);
    const n = normalizeDataset(ds, s);
    expect(n.x[0]).toBeCloseTo(-3 / Math.sqrt(5), 6);
    expect(n.x[1]).toBe(0);
  });

  it('stored statistics round-trip through JSON and bad ones are typed errors', () => {
    const s = { mean: [0.28], std: [0.35] };
    expect(parseChannelStats(JSON.stringify(s), 'stats.json')).toEqual(s);
    expect(() => parseChannelStats('{"mean":[1]}', 'stats.json')).toThrow(DataFormatError);
    expect(() => parseChannelStats('{', 'stats.json')).toThrow(DataFormatError);
  });

  it('Fashion-MNIST test split: 10,000 images of 28×28, statistics near the known values', async (ctx) => {
    requireOrSkip(ctx, !existsSync(DEBIAN_FASHION_MNIST_DIR) && `Fashion-MNIST not found in ${DEBIAN_FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`);
    const test = await fashionMnist('test', { download: false });
    expect(test.length).toBe(10000);
    expect(test.shape).toEqual([28, 28, 1]);
    const s = channelStats(test);
    expect(s.mean[0]).toBeCloseTo(0.2868, 2);
    expect(s.std[0]).toBeCloseTo(0.3524, 2);
  });
});
