import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { DataFormatError, tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, type Batch, type DataLoaderOptions, type Example, type GatherOptions, type GatheringDataset } from '@kiln/data';
import { noisePixels, put, folderOpener } from './folder-fixtures.js';

// A late batch taken over by the waiting caller (ImageFolderOptions.stealLate): the decoding
// threads are made late with the `decodeLateMs` hook (each stalls before each image of a batch).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kiln-folder-late-'));

/** Deterministic pixels of image `i`: colour noise, or grey when `grey`. */
const pixels = (i: number, width: number, height: number, grey: boolean) => noisePixels(i, width, height, grey, 4111);

/**
 * `n` images in three classes. `mixed`: every fourth a PNG and every fourth a JPEG that must shrink
 * (both need libvips: never decoded by the caller), the rest plain 12×10 JPEGs (grey and colour);
 * otherwise all plain 12×10 JPEGs.
 */
async function makeFolder(root: string, n: number, mixed: boolean): Promise<{ cheap: boolean[] }> {
  const cheap: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const kind = mixed ? i % 4 : i % 2;
    const [w, h] = kind === 3 ? [40, 36] : [12, 10];
    const img = sharp(pixels(i, w, h, kind === 1), { raw: { width: w, height: h, channels: 3 } });
    const bytes = kind === 2 ? await img.png().toBuffer() : await img.jpeg({ quality: 90 }).toBuffer();
    put(path.join(root, `class${i % 3}`, `${String(i).padStart(3, '0')}.${kind === 2 ? 'png' : 'jpg'}`), bytes);
    cheap.push(kind < 2);
  }
  return { cheap };
}

const bytesOf = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function epoch(loader: DataLoader<Example>): Promise<{ indices: number[]; x: Buffer; y: number[] }[]> {
  const out = [];
  for await (const b of loader as AsyncIterable<Batch>) {
    out.push({ indices: Array.from(b.indices), x: Buffer.from((await b.x.data()).buffer), y: Array.from(await b.y.data()) });
    tf.dispose([b.x, b.y]);
  }
  return out;
}

const open = folderOpener();

const spec = { size: [10, 12] as [number, number], channels: 3 as const };
const N = 24;
const mixedRoot = path.join(tmp, 'mixed');
const plainRoot = path.join(tmp, 'plain');
let cheapOf: boolean[];

beforeAll(async () => {
  await wasmBackend().init();
  cheapOf = (await makeFolder(mixedRoot, N, true)).cheap;
  await makeFolder(plainRoot, N, false);
});

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('GatherOptions.wanted: the loader says when it starts waiting for a batch', () => {
  it('settles for a batch only when the loader awaits it, never for one read ahead and dropped', async () => {
    const events: string[] = [];
    let calls = 0;
    const ds: GatheringDataset<Example> = {
      length: 12,
      schema: { x: { shape: [2], dtype: 'float32' }, y: { shape: [], dtype: 'int32' } },
      get: () => {
        throw new Error('not used');
      },
      getMany: () => Promise.reject(new Error('not used')),
      gatherMany: (indices: ArrayLike<number>, options?: GatherOptions) => {
        const b = calls++;
        events.push(`read ${b}`);
        void options?.wanted?.then(() => events.push(`wanted ${b}`));
        return delay(5).then(() => ({ x: Float32Array.from({ length: 2 * indices.length }, (_, k) => k), y: Int32Array.from(indices) }));
      },
    };
    const loader = new DataLoader(ds, { batchSize: 3, prefetch: 2 });
    for await (const b of loader as AsyncIterable<Batch>) {
      events.push('step');
      tf.dispose([b.x, b.y]);
      // Leave the epoch after its second batch: batch 3 was read ahead and is never awaited.
      if (events.filter((e) => e === 'step').length === 2) break;
    }
    await delay(20);
    // Batches 0–2 are read at once (prefetch 2 + the one awaited); each is wanted just before its step.
    expect(events.slice(0, 4)).toEqual(['read 0', 'read 1', 'read 2', 'wanted 0']);
    expect(events.indexOf('wanted 1')).toBeGreaterThan(events.indexOf('step'));
    expect(events.filter((e) => e.startsWith('wanted'))).toEqual(['wanted 0', 'wanted 1']);
    expect(calls).toBe(4);
  });
});

describe('a late batch is decoded by the waiting caller', () => {
  it('takes over the cheap images of a batch its threads have not started; the batch is byte-identical, the rest waits for the threads', async () => {
    const reference = await open(mixedRoot, { ...spec, workers: 0, cacheBytes: 0 });
    const late = await open(mixedRoot, { ...spec, workers: 1, cacheBytes: 0, decodeLateMs: 250 });
    const idx = [23, 0, 5, 17, 4, 9, 12, 1, 2, 3, 14, 21];
    const want = await reference.train.gatherMany(idx);
    const got = await late.train.gatherMany(idx, { wanted: Promise.resolve() });
    expect(bytesOf(got.x).equals(bytesOf(want.x))).toBe(true);
    expect(Array.from(got.y)).toEqual(Array.from(want.y));
    // The worker stalls 250 ms before each image it has not seen taken: the caller takes every
    // cheap one (a plain JPEG at the model's size) at once; PNGs and JPEGs to shrink stay the worker's.
    const cheap = idx.filter((j) => cheapOf[Number(path.basename(late.train.files[j]).slice(0, 3))]).length;
    expect(cheap).toBeGreaterThan(0);
    expect(cheap).toBeLessThan(idx.length);
    expect(late.train.decodeStats()).toEqual({ threads: idx.length - cheap, caller: cheap });
  });

  it('leaves a batch nobody waits for (no `wanted`, or stealLate off) to the threads', async () => {
    const reference = await open(plainRoot, { ...spec, workers: 0, cacheBytes: 0 });
    const late = await open(plainRoot, { ...spec, workers: 1, cacheBytes: 0, decodeLateMs: 20 });
    const off = await open(plainRoot, { ...spec, workers: 1, cacheBytes: 0, decodeLateMs: 20, stealLate: false });
    const idx = [3, 1, 4, 1, 5, 9];
    const want = bytesOf((await reference.train.gatherMany(idx)).x);
    expect(bytesOf((await late.train.gatherMany(idx)).x).equals(want)).toBe(true);
    expect(late.train.decodeStats()).toEqual({ threads: 5, caller: 0 });
    expect(bytesOf((await off.train.gatherMany(idx, { wanted: Promise.resolve() })).x).equals(want)).toBe(true);
    expect(off.train.decodeStats()).toEqual({ threads: 5, caller: 0 });
  });

  it('a batch the worker has started and not answered: the caller takes the rest from the back, then decodes the worker\'s cheap images again rather than wait', async () => {
    const reference = await open(plainRoot, { ...spec, workers: 0, cacheBytes: 0 });
    const late = await open(plainRoot, { ...spec, workers: 1, cacheBytes: 0, decodeLateMs: 60 });
    // A first batch, so that the worker is running when the second is asked for.
    await late.train.gatherMany([0]);
    const idx = Array.from({ length: N }, (_, k) => (k * 7) % N);
    const want = await reference.train.gatherMany(idx);
    // Waited for after 300 ms: the worker (60 ms per image) has claimed a few, far from all 24.
    const got = await late.train.gatherMany(idx, { wanted: delay(300) });
    expect(bytesOf(got.x).equals(bytesOf(want.x))).toBe(true);
    expect(Array.from(got.y)).toEqual(Array.from(want.y));
    // Every image of the batch is plain: the caller covers them all and does not wait for the answer.
    expect(late.train.decodeStats()).toEqual({ threads: 1, caller: N });
  });

  it('a batch with images only the worker can decode: split between the two, merged in order, nothing missing', async () => {
    const reference = await open(mixedRoot, { ...spec, workers: 0, cacheBytes: 0 });
    const late = await open(mixedRoot, { ...spec, workers: 1, cacheBytes: 0, decodeLateMs: 60 });
    await late.train.gatherMany([0]);
    const idx = Array.from({ length: N }, (_, k) => (k * 5) % N);
    const want = await reference.train.gatherMany(idx);
    const got = await late.train.gatherMany(idx, { wanted: delay(300) });
    expect(bytesOf(got.x).equals(bytesOf(want.x))).toBe(true);
    expect(Array.from(got.y)).toEqual(Array.from(want.y));
    const cheap = idx.filter((j) => cheapOf[Number(path.basename(late.train.files[j]).slice(0, 3))]).length;
    const { threads, caller } = late.train.decodeStats();
    expect(threads + caller).toBe(1 + N);
    // The PNGs and JPEGs to shrink are the worker's; of the plain ones, those it had not claimed are the caller's.
    expect(threads).toBeGreaterThanOrEqual(1 + N - cheap);
    expect(caller).toBeGreaterThan(0);
    expect(caller).toBeLessThanOrEqual(cheap);
  });

  it('through a DataLoader: the same seeded batches as in memory, caller-decoded images cached, no tensor left behind', async () => {
    const f = await open(plainRoot, { ...spec, workers: 1, decodeLateMs: 40 });
    const memory = await (await open(plainRoot, { ...spec, workers: 0 })).train.materialize();
    const options: DataLoaderOptions = { batchSize: 5, shuffle: true, seed: 7 };
    const before = tf.memory().numTensors;
    const first = await epoch(new DataLoader(f.train, options));
    const inMemory = await epoch(new DataLoader(memory, options));
    expect(first.map((b) => b.indices)).toEqual(inMemory.map((b) => b.indices));
    expect(first.map((b) => b.y)).toEqual(inMemory.map((b) => b.y));
    expect(first.every((b, k) => b.x.equals(inMemory[k].x))).toBe(true);
    const { threads, caller } = f.train.decodeStats();
    expect(threads + caller).toBe(N);
    expect(caller).toBeGreaterThan(0);
    // The caller's images went into the cache as the worker's do: a second epoch decodes nothing.
    expect(f.train.cacheStats().entries).toBe(N);
    const second = await epoch(new DataLoader(f.train, options));
    expect(second).toEqual(first);
    expect(f.train.decodeStats()).toEqual({ threads, caller });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('unreadable files in a late batch', () => {
  let bad: string;
  beforeAll(async () => {
    bad = path.join(tmp, 'bad');
    await makeFolder(bad, 9, false);
    // Header intact, data cut: a plain 12×10 JPEG's header, but no end marker, so never the caller's.
    const jpeg = await sharp(pixels(99, 12, 10, false), { raw: { width: 12, height: 10, channels: 3 } }).jpeg().toBuffer();
    put(path.join(bad, 'class1', '004b-truncated.jpg'), jpeg.subarray(0, jpeg.length - 40));
  });

  it('with skipBad: replaced by the next readable image and counted as before', async () => {
    const warnings: string[] = [];
    const reference = await open(bad, { ...spec, workers: 0, skipBad: true, onWarning: () => undefined });
    const f = await open(bad, { ...spec, workers: 1, decodeLateMs: 40, skipBad: true, onWarning: (m) => warnings.push(m) });
    const at = f.train.files.findIndex((p) => p.endsWith('truncated.jpg'));
    expect(at).toBeGreaterThan(0);
    const got = await epoch(new DataLoader(f.train, { batchSize: 5 }));
    const want = await epoch(new DataLoader(reference.train, { batchSize: 5 }));
    expect(got).toEqual(want);
    expect(f.skipped.map((s) => path.basename(s.file))).toEqual(['004b-truncated.jpg']);
    expect(warnings.filter((m) => m.includes('004b-truncated.jpg'))).toHaveLength(1);
    const { threads, caller } = f.train.decodeStats();
    expect(threads + caller).toBe(9);
    expect(caller).toBeGreaterThan(0);
  });

  it('without skipBad: the DataFormatError naming the file, and no tensor left behind', async () => {
    const f = await open(bad, { ...spec, workers: 1, decodeLateMs: 40 });
    const before = tf.memory().numTensors;
    const err = await epoch(new DataLoader(f.train, { batchSize: 5 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).file).toMatch(/004b-truncated\.jpg$/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
