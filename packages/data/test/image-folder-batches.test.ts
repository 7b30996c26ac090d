import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, DataFormatError, tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, holdOut, horizontalFlip, isGatheringDataset, type Batch, type DataLoaderOptions, type Dataset, type Example, type GatheringDataset, type ImageFolderDataset } from '@kiln/data';
import { noisePixels, put, folderOpener } from './folder-fixtures.js';

// Each open starts decoding threads: seconds on a loaded machine.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kiln-folder-batches-'));

/** Deterministic pixels of image `i`: colour noise, or grey when `grey`. */
const pixels = (i: number, width: number, height: number, grey: boolean) => noisePixels(i, width, height, grey, 977);

/**
 * A folder of `n` images in three classes, of the kinds a batch mixes: small plain JPEGs (grey and
 * colour: the WebAssembly decoder), PNGs and larger JPEGs that must shrink (sharp).
 */
async function makeFolder(root: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    const [w, h] = kind === 3 ? [40, 36] : [12, 10];
    const img = sharp(pixels(i, w, h, kind === 1), { raw: { width: w, height: h, channels: 3 } });
    const bytes = kind === 2 ? await img.png().toBuffer() : await img.jpeg({ quality: 90 }).toBuffer();
    put(path.join(root, `class${i % 3}`, `${String(i).padStart(3, '0')}.${kind === 2 ? 'png' : 'jpg'}`), bytes);
  }
}

const bytesOf = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Every batch of one epoch as host values (tensors disposed). */
async function epoch(loader: DataLoader<Example>): Promise<{ indices: number[]; x: Buffer; y: number[]; shape: number[] }[]> {
  const out = [];
  for await (const b of loader as AsyncIterable<Batch>) {
    out.push({ indices: Array.from(b.indices), x: Buffer.from((await b.x.data()).buffer), y: Array.from(await b.y.data()), shape: b.x.shape });
    tf.dispose([b.x, b.y]);
  }
  return out;
}

/** Counts a dataset's getMany and gatherMany calls (instance properties shadowing its methods). */
function countReads(ds: ImageFolderDataset | GatheringDataset<Example>): { getMany: number; gatherMany: number } {
  const calls = { getMany: 0, gatherMany: 0 };
  for (const name of ['getMany', 'gatherMany'] as const) {
    const own = ds[name].bind(ds) as (i: ArrayLike<number>) => Promise<unknown>;
    Object.defineProperty(ds, name, {
      configurable: true,
      value: (indices: ArrayLike<number>) => {
        calls[name]++;
        return own(indices);
      },
    });
  }
  return calls;
}

const open = folderOpener();
const N = 30;
const root = path.join(tmp, 'mixed');
const spec = { size: [10, 12] as [number, number], channels: 3 as const };

beforeAll(async () => {
  await wasmBackend().init();
  await makeFolder(root, N);
});

describe('gatherMany: a batch of an image folder in one buffer', () => {
  it('holds exactly the rows getMany gives, decoded on the pool, on the calling thread, or from the cache', async () => {
    const inline = await open(root, { ...spec, workers: 0, cacheBytes: 0 });
    const pooled = await open(root, { ...spec, workers: 2 });
    const idx = [5, 0, 29, 17, 3, 3, 12];
    const reference = await inline.train.getMany(idx);
    const rows = Buffer.concat(reference.map((e) => bytesOf(e.x)));
    const check = (b: { x: Float32Array; y: Int32Array }) => {
      expect(b.x.length).toBe(idx.length * 10 * 12 * 3);
      expect(bytesOf(b.x).equals(rows)).toBe(true);
      expect(Array.from(b.y)).toEqual(idx.map((i) => inline.train.labels[i]));
    };
    check(await inline.train.gatherMany(idx));
    // Cold (every image decoded on a worker), then a batch of hits and misses, then all hits.
    check(await pooled.train.gatherMany(idx));
    const mixed = [1, 5, 29, 2, 17];
    const b = await pooled.train.gatherMany(mixed);
    const ref = await inline.train.getMany(mixed);
    expect(bytesOf(b.x).equals(Buffer.concat(ref.map((e) => bytesOf(e.x))))).toBe(true);
    check(await pooled.train.gatherMany(idx));
    const stats = pooled.train.cacheStats();
    expect(stats.entries).toBe(8);
    // Misses: all 7 lookups of the cold batch (the repeated 3 is then served by the cache), 2 of the mixed one.
    expect(stats.misses).toBe(7 + 2);
    expect(await pooled.train.gatherMany([])).toEqual({ x: new Float32Array(0), y: new Int32Array(0) });
    await expect(pooled.train.gatherMany([N])).rejects.toBeInstanceOf(ConfigError);
  });

  it('is what a DataLoader reads, one call per batch, and gives the batches an in-memory copy gives, in the same seeded order', async () => {
    const f = await open(root, { ...spec, cacheBytes: 0 });
    const memory = await f.train.materialize();
    expect(isGatheringDataset(f.train)).toBe(true);
    const options: DataLoaderOptions = { batchSize: 7, shuffle: true, seed: 13, transform: horizontalFlip(0.5) };
    const reads = countReads(f.train);
    const fromFolder = new DataLoader(f.train, options);
    const inMemory = new DataLoader(memory, options);
    const before = tf.memory().numTensors;
    for (let e = 0; e < 2; e++) {
      const got = await epoch(fromFolder);
      const want = await epoch(inMemory);
      expect(got.map((b) => b.indices)).toEqual(want.map((b) => b.indices));
      expect(got.map((b) => b.y)).toEqual(want.map((b) => b.y));
      expect(got.every((b, k) => b.x.equals(want[k].x))).toBe(true);
      expect(got[0].shape).toEqual([7, 10, 12, 3]);
    }
    expect(reads).toEqual({ getMany: 0, gatherMany: 2 * 5 });
    expect(tf.memory().numTensors).toBe(before);
    expect(fromFolder.schema).toEqual({ x: { shape: [10, 12, 3], dtype: 'float32' }, y: { shape: [], dtype: 'int32' } });
  });

  it('a loader saved mid-epoch resumes with exactly the batches an uninterrupted epoch gives', async () => {
    const f = await open(root, spec);
    const options: DataLoaderOptions = { batchSize: 4, shuffle: true, seed: 21, transform: horizontalFlip(0.5) };
    const whole = await epoch(new DataLoader(f.train, options));
    const first = new DataLoader(f.train, options);
    let taken = 0;
    for await (const b of first as AsyncIterable<Batch>) {
      tf.dispose([b.x, b.y]);
      if (++taken === 3) break;
    }
    const resumed = new DataLoader(f.train, options);
    resumed.loadStateDict(JSON.parse(JSON.stringify(first.stateDict())));
    const rest = await epoch(resumed);
    expect(rest.map((b) => b.indices)).toEqual(whole.slice(3).map((b) => b.indices));
    expect(rest.every((b, k) => b.x.equals(whole[k + 3].x))).toBe(true);
  });

  it('a held-out part of a folder gathers through its source; a flat example shape is a view of the same rows', async () => {
    const f = await open(root, spec);
    const [train, val] = holdOut(f.train, 0.3, 1);
    expect(isGatheringDataset(train) && isGatheringDataset(val)).toBe(true);
    const reads = countReads(f.train);
    const got = await epoch(new DataLoader(val, { batchSize: 4 }));
    expect(reads.getMany).toBe(0);
    expect(reads.gatherMany).toBe(got.length);
    const memory = await f.train.materialize(val.indices);
    const want = await epoch(new DataLoader(memory, { batchSize: 4 }));
    expect(got.map((b) => b.y)).toEqual(want.map((b) => b.y));
    expect(got.every((b, k) => b.x.equals(want[k].x))).toBe(true);
    const flat = await epoch(new DataLoader(val, { batchSize: 4, exampleShape: [360] }));
    expect(flat[0].shape).toEqual([4, 360]);
    expect(flat.every((b, k) => b.x.equals(want[k].x))).toBe(true);
  });

  it('a schema declared otherwise is collated from examples, as for any dataset', async () => {
    const f = await open(root, spec);
    const reads = countReads(f.train);
    const loader = new DataLoader(f.train, { batchSize: 8, schema: { y: { shape: [], dtype: 'float32' } } });
    const batches = await epoch(loader);
    // One getMany per batch (which the folder answers through its own gatherMany).
    expect(reads.getMany).toBe(4);
    expect(batches[0].y).toEqual(Array.from({ length: 8 }, (_, i) => f.train.labels[i]));
    expect(loader.schema?.y).toEqual({ shape: [], dtype: 'float32' });
  });

  it('the loader checks what a gathering dataset hands back', async () => {
    const bad: GatheringDataset<Example> & Dataset<Example> = {
      length: 4,
      schema: { x: { shape: [2], dtype: 'float32' }, y: { shape: [], dtype: 'int32' } },
      get: () => ({ x: new Float32Array(2), y: 0 }),
      getMany: async (indices) => Array.from(indices, () => ({ x: new Float32Array(2), y: 0 })),
      gatherMany: async (indices) => ({ x: new Float32Array(2 * indices.length), y: new Float32Array(indices.length) }),
    };
    const err = await epoch(new DataLoader(bad, { batchSize: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/gatherMany\(indices\)\.y/);
  });
});

describe('unreadable files in gathered batches', () => {
  let bad: string;
  beforeAll(async () => {
    bad = path.join(tmp, 'bad');
    await makeFolder(bad, 9);
    // Header intact, data cut: passes the probe at opening, fails when the batch is decoded.
    const big = await sharp(pixels(99, 64, 64, false), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    put(path.join(bad, 'class1', '004b-truncated.jpg'), big.subarray(0, big.length >> 1));
  });

  it('with skipBad: replaced by the next readable image, label and all, warned about once and counted', async () => {
    const warnings: string[] = [];
    const f = await open(bad, { ...spec, skipBad: true, onWarning: (m) => warnings.push(m) });
    const at = f.train.files.findIndex((p) => p.endsWith('truncated.jpg'));
    expect(at).toBeGreaterThan(0);
    const got = await epoch(new DataLoader(f.train, { batchSize: 5 }));
    expect(got.flatMap((b) => b.indices)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const rowBytes = 10 * 12 * 3 * 4;
    const batch = got[Math.floor(at / 5)];
    const row = (k: number) => batch.x.subarray(k * rowBytes, (k + 1) * rowBytes);
    expect(row(at % 5).equals(row((at % 5) + 1))).toBe(true);
    expect(batch.y[at % 5]).toBe(f.train.labels[at + 1]);
    expect(f.skipped.map((s) => path.basename(s.file))).toEqual(['004b-truncated.jpg']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/004b-truncated\.jpg \(replaced by the next readable image\)/);
    await epoch(new DataLoader(f.train, { batchSize: 5 }));
    expect(warnings).toHaveLength(1);
  });

  it('without skipBad: the loader raises the DataFormatError naming the file', async () => {
    const f = await open(bad, spec);
    const before = tf.memory().numTensors;
    const err = await epoch(new DataLoader(f.train, { batchSize: 5 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).file).toMatch(/004b-truncated\.jpg$/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
