import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, DataFormatError, Rng } from '@kiln/core';
import { ArrayDataset, DataLoader, channelStats, subsetDataset } from '@kiln/data';
import { createModel } from '@kiln/zoo';
import { ClassificationModule, createTrainer } from '@kiln/trainer';
import { convertImages, inputPipeline, inputStats, loadData, parseDatasetSpec, parseImageSize, readBatch, sampleDataset, selectClasses, splitValidation } from '../src/datasets.js';
import { startRun } from '../src/backends.js';
import { writeCifar10, writeImageFolder } from './helpers.js';

beforeAll(async () => {
  await startRun('wasm', () => {});
});

describe('dataset specs', () => {
  it('parses every kind, with the location from the spec or --data-dir', () => {
    expect(parseDatasetSpec('fashion-mnist')).toEqual({ kind: 'fashion-mnist', location: undefined });
    expect(parseDatasetSpec('cifar10:/data/c')).toEqual({ kind: 'cifar10', location: '/data/c' });
    expect(parseDatasetSpec('cifar100', '/d')).toEqual({ kind: 'cifar100', location: '/d' });
    expect(parseDatasetSpec('folder:photos/a:b')).toEqual({ kind: 'folder', location: 'photos/a:b' });
    expect(parseDatasetSpec('folder', 'photos')).toEqual({ kind: 'folder', location: 'photos' });
    expect(parseDatasetSpec('csv:t.csv')).toEqual({ kind: 'csv', location: 't.csv' });
    expect(() => parseDatasetSpec('mnist')).toThrow(ConfigError);
    expect(() => parseDatasetSpec('mnist')).toThrow(/folder:DIR|one of: fashion-mnist/);
    expect(() => parseDatasetSpec('folder')).toThrow(/folder:DIR/);
    expect(() => parseDatasetSpec('csv:')).toThrow(/a path after 'csv:'/);
  });

  it('parses --image-size', () => {
    expect(parseImageSize('28x28')).toEqual([28, 28]);
    expect(parseImageSize('64X32')).toEqual([64, 32]);
    expect(parseImageSize('96')).toEqual([96, 96]);
    for (const bad of ['0x4', '28x', 'axb', '1x2x3']) expect(() => parseImageSize(bad)).toThrow(/--image-size/);
  });
});

describe('input conversion and statistics', () => {
  it('resizes with half-pixel centres (as PyTorch interpolate, align_corners=False) and converts channels', async () => {
    const x = tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1]);
    const up = convertImages([4, 4, 1])(x, new Rng(0));
    // Sample positions (x + 0.5) / 2 − 0.5 clamp to 0, 0.25, 0.75, 1 along each axis; value = 2·row + col.
    const r = [0, 0.25, 0.75, 1];
    expect(Array.from(await up.data())).toEqual(r.flatMap((ry) => r.map((rx) => 2 * ry + rx)).map((v) => expect.closeTo(v, 6)));
    const rgb = convertImages([2, 2, 3])(x, new Rng(0));
    expect(rgb.shape).toEqual([1, 2, 2, 3]);
    expect(Array.from(await rgb.data())).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    const grey = convertImages([1, 1, 1])(tf.tensor4d([1, 0.5, 0.25], [1, 1, 1, 3]), new Rng(0));
    expect((await grey.data())[0]).toBeCloseTo(0.299 + 0.587 * 0.5 + 0.114 * 0.25, 6);
    tf.dispose([x, up, rgb, grey]);
  });

  it('inputStats over an in-memory set equals the pass over its batches, and follows the conversion', async () => {
    const rng = new Rng(3);
    const xs = Float32Array.from({ length: 700 * 4 * 4 * 3 }, () => rng.next());
    const ds = new ArrayDataset(xs, new Int32Array(700), [4, 4, 3]);
    const all = Int32Array.from({ length: 700 }, (_, i) => i);
    // In memory the statistics come from channelStats; a view of the same examples (not an
    // ArrayDataset) takes the pass over uploaded batches, which adds the same values in the same order.
    const got = await inputStats({ shape: [4, 4, 3] }, ds, 0);
    const viaBatches = await inputStats({ shape: [4, 4, 3] }, subsetDataset(ds, all), 0, 700);
    expect(got).toEqual(viaBatches);
    const want = channelStats(ds);
    // Pixels held as bytes: the histogram's statistics, within rounding of the running sum over batches.
    const bytes = Uint8Array.from({ length: 700 * 4 * 4 * 3 }, () => Math.floor(rng.next() * 256));
    const byteSet = new ArrayDataset({ bytes, scale: 255 }, new Int32Array(700), [4, 4, 3]);
    const fromHistogram = await inputStats({ shape: [4, 4, 3] }, byteSet, 0);
    const fromBatches = await inputStats({ shape: [4, 4, 3] }, subsetDataset(byteSet, all), 0, 700);
    expect(fromHistogram).toEqual(channelStats(byteSet));
    fromHistogram.mean.forEach((m, k) => expect(Math.abs(m - fromBatches.mean[k]) / m).toBeLessThan(1e-12));
    fromHistogram.std.forEach((s, k) => expect(Math.abs(s - fromBatches.std[k]) / s).toBeLessThan(1e-12));
    // Grey from RGB: the mean is the luma of the channel means.
    const grey = await inputStats({ shape: [4, 4, 3], convert: convertImages([4, 4, 1]) }, ds, 0);
    expect(grey.mean[0]).toBeCloseTo(0.299 * want.mean[0] + 0.587 * want.mean[1] + 0.114 * want.mean[2], 5);
  });

  it('selectClasses keeps and renumbers the chosen classes', () => {
    const ds = new ArrayDataset(Float32Array.from([0, 1, 2, 3, 4]), Int32Array.from([0, 1, 2, 1, 2]), [1], ['a', 'b', 'c']);
    const sub = selectClasses(ds, [2, 1]) as ArrayDataset;
    expect(Array.from(sub.x)).toEqual([1, 2, 3, 4]);
    expect(Array.from(sub.y)).toEqual([1, 0, 1, 0]);
    expect(sub.classes).toEqual(['c', 'b']);
  });
});

describe('loadData', () => {
  it('reads CIFAR-10 binary files with their class names; --image-size/--channels convert per batch', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-cifar-'));
    writeCifar10(root, 6);
    const data = await loadData({ dataset: `cifar10:${root}` });
    expect(data.classes[0]).toBe('plane');
    expect(data.train.length).toBe(30);
    expect(data.test?.length).toBe(6);
    expect(data.shape).toEqual([32, 32, 3]);
    expect(data.inputShape).toEqual([32, 32, 3]);
    expect(data.convert).toBeUndefined();
    const small = await loadData({ dataset: 'cifar10', 'data-dir': root, 'image-size': '16x16', channels: '1' });
    expect(small.shape).toEqual([32, 32, 3]);
    expect(small.inputShape).toEqual([16, 16, 1]);
    expect(small.convert).toBeDefined();
    await expect(loadData({ dataset: `cifar100:${root}` })).rejects.toThrow(/CIFAR-100 could not be found/);
    await expect(loadData({ dataset: `cifar10:${root}`, target: 'coarse' })).rejects.toThrow(/--target/);
  });

  it('reads a pixel CSV (labels by name, 0-255 scaled) and pairs train.csv with test.csv', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-csv-'));
    const header = ['name', ...Array.from({ length: 16 }, (_, i) => `p${i}`)].join(',');
    const row = (label: string, v: number) => [label, ...Array.from({ length: 16 }, () => v)].join(',');
    writeFileSync(path.join(dir, 'shapes_train.csv'), [header, row('square', 255), row('circle', 0), row('square', 51)].join('\n'));
    writeFileSync(path.join(dir, 'shapes_test.csv'), [header, row('circle', 0), row('triangle', 102)].join('\n'));
    const data = await loadData({ dataset: `csv:${path.join(dir, 'shapes_train.csv')}`, target: 'name' });
    expect(data.classes).toEqual(['circle', 'square', 'triangle']);
    expect(data.shape).toEqual([4, 4, 1]);
    const train = data.train as ArrayDataset;
    expect(Array.from(train.y)).toEqual([1, 0, 1]);
    expect(train.x[0]).toBe(1);
    expect(train.x[32]).toBeCloseTo(0.2, 6);
    expect(Array.from((data.test as ArrayDataset).y)).toEqual([0, 2]);
    expect(data.notes.join('\n')).toMatch(/scaled to \[0, 1\]/);

    writeFileSync(path.join(dir, 'odd.csv'), ['label,a,b,c,d,e', '0,1,2,3,4,5'].join('\n'));
    await expect(loadData({ dataset: `csv:${path.join(dir, 'odd.csv')}` })).rejects.toThrow(DataFormatError);
    await expect(loadData({ dataset: `csv:${path.join(dir, 'odd.csv')}` })).rejects.toThrow(/5 pixel columns are not a square image/);
    await expect(loadData({ dataset: `csv:${path.join(dir, 'shapes_train.csv')}`, target: 'colour' })).rejects.toThrow(/name, p0/);
  });

  it('keeps a folder lazy past the memory budget, and gives the same examples and statistics as in memory', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-lazy-'));
    writeImageFolder(root, ['a', 'b'], { train: 5, test: 2 }, 3);
    const eager = await loadData({ dataset: `folder:${root}`, 'image-size': '12x12' });
    const lazy = await loadData({ dataset: `folder:${root}`, 'image-size': '12x12' }, { memoryBudget: 0 });
    try {
      expect(eager.train).toBeInstanceOf(ArrayDataset);
      expect(lazy.train).not.toBeInstanceOf(ArrayDataset);
      expect(lazy.classes).toEqual(['a', 'b']);
      const all = Int32Array.from({ length: 10 }, (_, i) => i);
      const [a, b] = await Promise.all([readBatch(eager.train, all, eager.shape), readBatch(lazy.train, all, lazy.shape)]);
      expect(Array.from(b.y)).toEqual(Array.from(a.y));
      expect(Array.from(b.x)).toEqual(Array.from(a.x));
      const [sa, sb] = await Promise.all([inputStats(eager, eager.train, 0), inputStats(lazy, lazy.train, 0)]);
      sb.mean.forEach((m, k) => expect(m).toBeCloseTo(sa.mean[k], 6));
      // A sample of a lazy set is a view that still reads asynchronously.
      const part = sampleDataset(lazy.train, 4, 1);
      expect((await readBatch(part, Int32Array.from([0, 1, 2, 3]), lazy.shape)).x).toHaveLength(4 * 12 * 12 * 3);
    } finally {
      await Promise.all([eager.close(), lazy.close()]);
    }
  });

  it('trains through the Trainer on a lazy folder (async batches, held-out view, per-batch standardisation) without leaking tensors', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-lazy-train-'));
    writeImageFolder(root, ['a', 'b', 'c'], { train: 6, test: 2 });
    const data = await loadData({ dataset: `folder:${root}`, 'image-size': '16x16', channels: '1' }, { memoryBudget: 0 });
    try {
      const [train, val] = splitValidation(data.train, data.val, 3, 0);
      expect(val?.length).toBe(3);
      const stats = await inputStats(data, train, 0);
      const transform = inputPipeline(data.convert, stats);
      const module = new ClassificationModule(createModel('lenet5', { inputShape: data.inputShape, numClasses: 3 }));
      const trainer = createTrainer({ maxEpochs: 2, seed: 0 });
      const before = tf.memory().numTensors;
      await trainer.fit(module, new DataLoader(train, { batchSize: 5, shuffle: true, exampleShape: data.shape, transform }), new DataLoader(val as typeof train, { batchSize: 5, exampleShape: data.shape, transform }));
      const metrics = await trainer.test(module, new DataLoader(data.test as typeof train, { batchSize: 4, exampleShape: data.shape, transform }));
      trainer.optimizerConfig?.optimizer.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(trainer.currentEpoch).toBe(2);
      expect(metrics.test_acc).toBeGreaterThanOrEqual(0);
      module.model.dispose();
    } finally {
      await data.close();
    }
  }, 60_000);
});
