import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { wasmBackend } from '@kiln/backend-cpu';
import { tf, ConfigError, DataFormatError, KilnError, Rng } from '@kiln/core';
import {
  ArrayDataset, DataLoader, channelStats, crossValidation, findLeaks, holdOut, isScaledBytes, normalizeDataset, parseCifar, parseIdx, readIdxFile, readIdxFileAsync,
  readIdxImageDataset, trainValTestSplit,
} from '@kiln/data';

/*
 * Inputs held as bytes ({ bytes, scale }) against the same data held as float32 the way the readers
 * used to build it (`x[i] = bytes[i] / scale` into a Float32Array): every value a dataset hands out
 * must be bit for bit the same, whichever path produced it.
 */

beforeAll(async () => {
  await wasmBackend().init();
});

/** Bytes skewed towards 0 and 255 like image backgrounds, every value present. */
function randomBytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, (_, i) => (i < 256 ? i : rng.next() < 0.4 ? 0 : rng.next() < 0.1 ? 255 : Math.floor(rng.next() * 256)));
}

/** The float32 copy the readers made before: each byte divided by `scale` in a Float32Array. */
function asFloats(bytes: Uint8Array, scale: number): Float32Array {
  const x = new Float32Array(bytes.length);
  for (let i = 0; i < x.length; i++) x[i] = bytes[i] / scale;
  return x;
}

/** A dataset held as bytes and its float32 twin, with the same labels. */
function twins(n: number, shape: number[], scale = 255, seed = 1): { bytes: ArrayDataset; floats: ArrayDataset; raw: Uint8Array } {
  const size = shape.reduce((a, b) => a * b, 1);
  const raw = randomBytes(n * size, seed);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  return { bytes: new ArrayDataset({ bytes: raw, scale }, y, shape, ['a', 'b', 'c']), floats: new ArrayDataset(asFloats(raw, scale), y, shape, ['a', 'b', 'c']), raw };
}

/** Bitwise equality of float32 arrays (toEqual would accept -0 for 0 and compare NaN loosely). */
function expectSameBits(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
}

describe('ArrayDataset holding bytes', () => {
  it('get, gather, subset, take and x give exactly the float32 values of bytes / scale', () => {
    // 28×28×1 rows (a multiple of 4 bytes: read a word at a time) and a scale that is not 255.
    for (const scale of [255, 7]) {
      const { bytes, floats } = twins(50, [28, 28, 1], scale);
      expect(isScaledBytes(bytes.stored)).toBe(true);
      expect(isScaledBytes(floats.stored)).toBe(false);
      expect(bytes.schema).toEqual(floats.schema);
      const indices = Int32Array.from([7, 3, 3, 49, 0, 1, 2, 10]);
      const a = bytes.gather(indices);
      const b = floats.gather(indices);
      expectSameBits(a.x, b.x);
      expect(Array.from(a.y)).toEqual(Array.from(b.y));
      for (const i of [0, 17, 49]) expectSameBits(bytes.get(i).x, floats.get(i).x);
      const sub = bytes.subset(indices);
      expect(isScaledBytes(sub.stored)).toBe(true);
      expectSameBits(sub.x, floats.subset(indices).x);
      const head = bytes.take(5);
      expect(isScaledBytes(head.stored)).toBe(true);
      expectSameBits(head.x, floats.take(5).x);
      expectSameBits(bytes.x, floats.x);
    }
  });

  it('rows that do not start on 4-byte boundaries (odd row size, offset buffer) convert the same', () => {
    const raw = randomBytes(1 + 40 * 3 * 5 * 3, 2);
    // A view starting at byte 1: neither the buffer offset nor the 45-byte rows are word-aligned.
    const view = raw.subarray(1);
    const y = new Int32Array(40);
    const bytes = new ArrayDataset({ bytes: view, scale: 255 }, y, [3, 5, 3]);
    const floats = new ArrayDataset(asFloats(view, 255), y, [3, 5, 3]);
    const indices = Int32Array.from({ length: 40 }, (_, i) => (i * 7) % 40);
    expectSameBits(bytes.gather(indices).x, floats.gather(indices).x);
    // Word-sized rows in a buffer that starts at an odd offset.
    const oddBytes = randomBytes(1 + 10 * 8, 3).subarray(1);
    const rows = Int32Array.from([9, 0, 4, 4]);
    const odd = new ArrayDataset({ bytes: oddBytes, scale: 255 }, new Int32Array(10), [8]);
    expectSameBits(odd.gather(rows).x, new ArrayDataset(asFloats(oddBytes, 255), new Int32Array(10), [8]).gather(rows).x);
  });

  it('splits, folds and loader batches are the same as from the float32 dataset', async () => {
    const { bytes, floats } = twins(60, [4, 4, 1]);
    const [trainB, valB] = holdOut(bytes, 0.2, 5);
    const [trainF, valF] = holdOut(floats, 0.2, 5);
    expect(isScaledBytes(trainB.stored)).toBe(true);
    expectSameBits(trainB.x, trainF.x);
    expectSameBits(valB.x, valF.x);
    const threeB = trainValTestSplit(bytes, [0.6, 0.2, 0.2], 1);
    const threeF = trainValTestSplit(floats, [0.6, 0.2, 0.2], 1);
    threeB.forEach((p, i) => expectSameBits(p.x, threeF[i].x));
    const foldsB = [...crossValidation(bytes, 3, { seed: 2 })];
    const foldsF = [...crossValidation(floats, 3, { seed: 2 })];
    foldsB.forEach((f, i) => expectSameBits(f.val.x, foldsF[i].val.x));
    const loaders = [bytes, floats].map((ds) => new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 9 }));
    const batches = await Promise.all(loaders.map(async (l) => {
      const out: Float32Array[] = [];
      for await (const batch of l) {
        out.push((await batch.x.data()) as Float32Array);
        tf.dispose([batch.x, batch.y]);
      }
      return out;
    }));
    expect(batches[0]).toHaveLength(4);
    batches[0].forEach((x, i) => expectSameBits(x, batches[1][i]));
  });

  it('normalizeDataset gives the float path bit for bit, and findLeaks matches rows across storages', () => {
    const { bytes, floats } = twins(30, [2, 2, 3]);
    const stats = { mean: [0.3, 0.5, 0.1], std: [0.2, 0.25, 0.4] };
    expectSameBits(normalizeDataset(bytes, stats).x, normalizeDataset(floats, stats).x);
    // The same image held both ways is one image.
    expect(findLeaks({ bytes: bytes.take(3), floats: floats.subset([2, 20]) })).toEqual([{ splits: ['bytes', 'floats'], indices: [2, 0] }]);
  });

  it('refuses a bad scale, a non-byte buffer and a size that disagrees with the labels', () => {
    const y = new Int32Array(2);
    expect(() => new ArrayDataset({ bytes: new Uint8Array(8), scale: 0 }, y, [4])).toThrow(ConfigError);
    expect(() => new ArrayDataset({ bytes: new Uint8Array(8), scale: Number.NaN }, y, [4])).toThrow(ConfigError);
    expect(() => new ArrayDataset({ bytes: new Int8Array(8) as unknown as Uint8Array, scale: 255 }, y, [4])).toThrow(ConfigError);
    expect(() => new ArrayDataset({ bytes: new Uint8Array(7), scale: 255 }, y, [4])).toThrow(KilnError);
    expect(() => new ArrayDataset({ bytes: new Uint8Array(8), scale: 255 }, y, [4]).gather([2])).toThrow(ConfigError);
  });
});

describe('channel statistics of bytes', () => {
  /**
   * The exact mean and E[x²] of float32 values b/255 (each a multiple of 2⁻³², being ≥ 2⁻⁸ with 24
   * significant bits), as integers in BigInt, rounded to double only at the end.
   */
  function exactStats(bytes: Uint8Array, c: number): { mean: number[]; std: number[] } {
    const levels = asFloats(Uint8Array.from({ length: 256 }, (_, b) => b), 255);
    const unit = 2 ** 32;
    const sum = Array.from({ length: c }, () => 0n);
    const sq = Array.from({ length: c }, () => 0n);
    for (let i = 0; i < bytes.length; i++) {
      const v = BigInt(levels[bytes[i]] * unit);
      sum[i % c] += v;
      sq[i % c] += v * v;
    }
    const n = BigInt(bytes.length / c);
    // mean = S / (n·2³²); E[x²] − mean² = (n·Q − S²) / (n²·2⁶⁴), exact until the final division.
    const mean = sum.map((s) => Number((s * 2n ** 40n) / n) / 2 ** 72);
    const variance = sum.map((s, k) => Number(((n * sq[k] - s * s) * 2n ** 40n) / (n * n)) / 2 ** 104);
    return { mean, std: variance.map((v) => Math.sqrt(v)) };
  }

  it('a histogram of the bytes gives the exact statistics, which the float32 path approaches', () => {
    for (const [shape, n] of [[[28, 28, 1], 400], [[5, 5, 3], 300]] as const) {
      const { bytes, floats, raw } = twins(n, [...shape]);
      const c = shape[2];
      const got = channelStats(bytes);
      const exact = exactStats(raw, c);
      const viaFloats = channelStats(floats);
      for (let k = 0; k < c; k++) {
        expect(Math.abs(got.mean[k] - exact.mean[k]) / exact.mean[k]).toBeLessThan(1e-15);
        expect(Math.abs(got.std[k] - exact.std[k]) / exact.std[k]).toBeLessThan(1e-12);
        // A running sum of float32 values rounds at every step; it stays within 1e-10 here.
        expect(Math.abs(viaFloats.mean[k] - got.mean[k]) / got.mean[k]).toBeLessThan(1e-10);
        expect(Math.abs(viaFloats.std[k] - got.std[k]) / got.std[k]).toBeLessThan(1e-10);
      }
    }
  });

  it('a constant channel gets std 1, as on the float path', () => {
    const raw = new Uint8Array(2 * 4 * 2);
    for (let i = 0; i < raw.length; i += 2) raw[i] = 51;
    const s = channelStats(new ArrayDataset({ bytes: raw, scale: 255 }, new Int32Array(2), [2, 2, 2]));
    expect(s.mean[0]).toBeCloseTo(0.2, 7);
    expect(s.mean[1]).toBe(0);
    expect(s.std).toEqual([1, 1]);
  });
});

describe('readers keep 8-bit images as bytes', () => {
  const dir = os.tmpdir();
  function idxFile(name: string, type: number, shape: number[], body: Uint8Array, gzip: boolean): string {
    const head = [0, 0, type, shape.length];
    for (const d of shape) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from(body)]);
    const file = path.join(dir, name);
    writeFileSync(file, gzip ? gzipSync(bytes) : bytes);
    return file;
  }

  const readRaw = (file: string) => gunzipSync(readFileSync(file));

  it('readIdxImageDataset: pixels / 255 exactly as float32, held as bytes', () => {
    const pixels = randomBytes(6 * 28 * 28, 4);
    const images = idxFile('img.idx.gz', 0x08, [6, 28, 28], pixels, true);
    const labels = idxFile('lab.idx', 0x08, [6], Uint8Array.from([0, 1, 2, 3, 4, 5]), false);
    const ds = readIdxImageDataset(images, labels);
    expect(isScaledBytes(ds.stored)).toBe(true);
    expectSameBits(ds.x, asFloats(pixels, 255));
    expect(ds.shape).toEqual([28, 28, 1]);
  });

  it('readIdxFileAsync reads what readIdxFile reads, with the same errors', async () => {
    const pixels = randomBytes(3 * 4 * 4, 5);
    const file = idxFile('async.idx.gz', 0x08, [3, 4, 4], pixels, true);
    const sync = readIdxFile(file);
    const viaPool = await readIdxFileAsync(file);
    expect(viaPool.shape).toEqual(sync.shape);
    expect(Array.from(viaPool.data)).toEqual(Array.from(pixels));
    // Two gzip members (the trailer then records only the second one's size): the whole content.
    const whole = Buffer.from(readRaw(file));
    const members = path.join(dir, 'members.idx.gz');
    writeFileSync(members, Buffer.concat([gzipSync(whole.subarray(0, 20)), gzipSync(whole.subarray(20))]));
    for (const got of [readIdxFile(members), await readIdxFileAsync(members)]) expect(Array.from(got.data)).toEqual(Array.from(pixels));
    const corrupt = path.join(dir, 'corrupt.idx.gz');
    writeFileSync(corrupt, gzipSync(Buffer.alloc(64)).subarray(0, 20));
    await expect(readIdxFileAsync(corrupt)).rejects.toThrow(DataFormatError);
    // A small file that decompresses past the limit (a gzip bomb in miniature).
    const bomb = idxFile('bomb.idx.gz', 0x08, [4, 64, 64], new Uint8Array(4 * 64 * 64), true);
    const limit = { maxBytes: 1000 };
    expect(() => readIdxFile(bomb, limit)).toThrow(/decompresses to more than the limit/);
    await expect(readIdxFileAsync(bomb, limit)).rejects.toThrow(/decompresses to more than the limit/);
  });

  it('parseIdx copies uint8 values unless asked for a view of its input', () => {
    const bytes = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
    const copy = parseIdx(bytes, 'a.idx');
    const view = parseIdx(bytes, 'a.idx', { view: true });
    bytes[8] = 70;
    expect(Array.from(copy.data)).toEqual([7, 8, 9]);
    expect(Array.from(view.data)).toEqual([70, 8, 9]);
  });

  it('parseCifar: planar bytes as interleaved HWC bytes, values / 255', () => {
    const record = new Uint8Array(1 + 3072);
    record[0] = 4;
    for (let p = 0; p < 1024; p++) [record[1 + p], record[1 + 1024 + p], record[1 + 2048 + p]] = [p % 256, 255 - (p % 256), 17];
    const ds = parseCifar(record, 'r.bin');
    expect(isScaledBytes(ds.stored)).toBe(true);
    const x = ds.get(0).x;
    expect([x[3 * 300], x[3 * 300 + 1], x[3 * 300 + 2]]).toEqual([Math.fround(44 / 255), Math.fround(211 / 255), Math.fround(17 / 255)]);
  });
});
