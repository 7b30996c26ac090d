import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type JpegOptions } from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { DataFormatError } from '@kiln/core';
import { folderOpener } from './folder-fixtures.js';
import { compactPixels, pixelsToFloat, RESIZE_MODES } from '../src/images/geometry.js';
import { SharpHost } from '../src/images/sharp-host.js';
import { plainJpegDecodes, plainJpegSize } from '../src/images/small-jpeg.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kiln-small-jpeg-'));
const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(path.join(d, f)).isDirectory() ? walk(path.join(d, f)) : [path.join(d, f)]));

/** Deterministic noisy colour pixels, so that chroma subsampling and the IDCT have work to do. */
function noise(width: number, height: number, grey = false): Buffer {
  const px = Buffer.alloc(width * height * 3);
  let s = 12345;
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      s = (s * 1103515245 + 12345) >>> 0;
      px[3 * p + c] = grey && c > 0 ? px[3 * p] : ((s >>> 16) & 255 & 0xf0) | (p % 16);
    }
  }
  return px;
}
const jpeg = (px: Buffer, width: number, height: number, options: JpegOptions, grey = false) => {
  const img = sharp(px, { raw: { width, height, channels: 3 } });
  return (grey ? img.toColourspace('b-w') : img).jpeg(options).toBuffer();
};

/** The JPEG kinds the WebAssembly path takes: grey, 4:2:0, 4:4:4, progressive, odd sizes, low quality. */
async function plainJpegs(): Promise<[string, Buffer][]> {
  return [
    ['grey 28×28', await jpeg(noise(28, 28, true), 28, 28, { quality: 90 }, true)],
    ['colour 4:2:0 37×23', await jpeg(noise(37, 23), 37, 23, { quality: 85, chromaSubsampling: '4:2:0' })],
    ['colour 4:4:4 16×16', await jpeg(noise(16, 16), 16, 16, { quality: 95, chromaSubsampling: '4:4:4' })],
    ['progressive 33×41', await jpeg(noise(33, 41), 33, 41, { quality: 80, progressive: true })],
    ['grey progressive 9×7', await jpeg(noise(9, 7, true), 9, 7, { quality: 70, progressive: true }, true)],
    ['quality 20 64×48', await jpeg(noise(64, 48), 64, 48, { quality: 20 })],
  ];
}

const fast = new SharpHost();
const libvips = new SharpHost({ smallJpeg: false });

describe('small plain JPEGs (WebAssembly libjpeg-turbo instead of libvips)', () => {
  it('gives exactly the bytes sharp gives, at the own size and through every resize mode', async () => {
    for (const [name, bytes] of await plainJpegs()) {
      const size = plainJpegSize(bytes);
      expect(size, name).toBeDefined();
      const { height, width } = size as { height: number; width: number };
      // Own size, enlarged (the shrink is sharp's own, so only growing sizes stay on the fast path), other aspect.
      const targets: [number, number][] = [[height, width], [height * 2, width + 3], [height + 5, width * 2]];
      for (const target of targets) {
        for (const resize of RESIZE_MODES) {
          const spec = { size: target, resize, channels: 3 as const };
          const a = await fast.decodeBytes(bytes, name, spec);
          const b = await libvips.decodeBytes(bytes, name, spec);
          expect(a.length, `${name} ${resize} ${target}`).toBe(b.length);
          expect(Buffer.from(a).equals(Buffer.from(b)), `${name} ${resize} ${target}`).toBe(true);
        }
      }
    }
  });

  it('is the path taken for them, and not when libvips is asked for', async () => {
    const [[, bytes]] = await plainJpegs();
    const spec = { size: [28, 28] as [number, number], resize: 'stretch' as const, channels: 1 as const };
    const n0 = plainJpegDecodes();
    await libvips.decodeBytes(bytes, 'grey', spec);
    expect(plainJpegDecodes()).toBe(n0);
    await fast.decodeBytes(bytes, 'grey', spec);
    expect(plainJpegDecodes()).toBe(n0 + 1);
    // Shrinking is libvips' (it shrinks while decoding): not taken.
    await fast.decodeBytes(bytes, 'grey', { ...spec, size: [14, 14] });
    expect(plainJpegDecodes()).toBe(n0 + 1);
  });

  it('leaves EXIF-oriented, ICC-tagged, CMYK, truncated and non-JPEG files to sharp', async () => {
    const px = noise(20, 10);
    const base = await jpeg(px, 20, 10, { quality: 90 });
    expect(plainJpegSize(base)).toEqual({ height: 10, width: 20 });
    const rotated = await sharp(base).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const icc = await sharp(base).withIccProfile('p3').jpeg().toBuffer();
    const cmyk = await sharp(px, { raw: { width: 20, height: 10, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer();
    const truncated = base.subarray(0, base.length - 40);
    const png = await sharp(px, { raw: { width: 20, height: 10, channels: 3 } }).png().toBuffer();
    for (const bytes of [rotated, icc, cmyk, truncated, png, Buffer.from([0xff, 0xd8, 0xff, 0xd9])]) expect(plainJpegSize(bytes)).toBeUndefined();
    // The oriented one still comes out as displayed (10 wide, 20 high), through sharp.
    const d = await fast.decodeBytes(rotated, 'rotated.jpg', { size: [20, 10], resize: 'stretch', channels: 3 });
    expect(Buffer.from(d).equals(Buffer.from(await libvips.decodeBytes(rotated, 'rotated.jpg', { size: [20, 10], resize: 'stretch', channels: 3 })))).toBe(true);
    // A truncated file is an error naming it, as before.
    await expect(fast.decodeBytes(truncated, 'cut.jpg', { size: [10, 20], resize: 'stretch', channels: 3 })).rejects.toBeInstanceOf(DataFormatError);
  });

  it('a plain-looking JPEG that libjpeg refuses ends as sharp’s DataFormatError, and the decoder keeps working', async () => {
    const [[, good]] = await plainJpegs();
    const broken = Buffer.from(good);
    // Wreck the first Huffman table's code counts (DHT segment) while keeping every length intact.
    const dht = broken.indexOf(Buffer.from([0xff, 0xc4]));
    expect(dht).toBeGreaterThan(0);
    broken.fill(0xff, dht + 5, dht + 21);
    expect(plainJpegSize(broken)).toBeDefined();
    const spec = { size: [28, 28] as [number, number], resize: 'stretch' as const, channels: 1 as const };
    await expect(fast.decodeBytes(broken, 'broken.jpg', spec)).rejects.toBeInstanceOf(DataFormatError);
    const n0 = plainJpegDecodes();
    const again = await fast.decodeBytes(good, 'good.jpg', spec);
    expect(plainJpegDecodes()).toBe(n0 + 1);
    expect(Buffer.from(again).equals(Buffer.from(await libvips.decodeBytes(good, 'good.jpg', spec)))).toBe(true);
  });

  it('every JPEG of the messy-folder fixture decodes to the same bytes on both paths', async () => {
    const out = path.join(tmp, 'messy');
    execFileSync(process.execPath, [path.join(here, '..', '..', '..', 'tools', 'fixtures', 'data', 'make-messy-folder.mjs'), '--out', out, '--per-class', '3', '--test-per-class', '1', '--max-size', '48'], { stdio: 'pipe' });
    const files = walk(out).filter((f) => /\.jpe?g$/i.test(f));
    let taken = 0;
    for (const file of files) {
      const bytes = readFileSync(file);
      if (plainJpegSize(bytes)) taken++;
      for (const channels of [1, 3] as const) {
        const spec = { size: [24, 24] as [number, number], resize: 'shorter-side' as const, channels };
        const a = await fast.decodeBytes(bytes, file, spec);
        const b = await libvips.decodeBytes(bytes, file, spec);
        expect(Buffer.from(a).equals(Buffer.from(b)), file).toBe(true);
      }
    }
    expect(files.length).toBeGreaterThan(0);
    expect(taken).toBeGreaterThan(0);
  });
});

describe('8-bit cache form', () => {
  it('a grey image is held at one byte per pixel and converts to exactly what its RGB form gives', () => {
    const grey = Uint8Array.from({ length: 256 }, (_, v) => v);
    const rgb = Uint8Array.from({ length: 768 }, (_, i) => Math.floor(i / 3));
    expect(compactPixels(rgb)).toEqual(grey);
    const colour = rgb.slice();
    colour[767] = 0;
    expect(compactPixels(colour)).toBe(colour);
    for (const channels of [1, 3] as const) {
      const a = pixelsToFloat(grey, 256, channels);
      const b = pixelsToFloat(rgb, 256, channels);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
    // One channel: BT.601 luma in float, the RGB form computed directly.
    const luma = pixelsToFloat(Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]), 3, 1);
    expect(Array.from(luma)).toEqual([Math.fround(0.299 * 255 / 255), Math.fround(0.587 * 255 / 255), Math.fround(0.114 * 255 / 255)]);
    expect(() => pixelsToFloat(grey, 100, 1)).toThrow(RangeError);
  });

  describe('a folder of colour and grey images', () => {
    const openFolder = folderOpener();
    const root = path.join(tmp, 'mixed');
    const open = (cacheBytes: number) => openFolder(root, { size: [16, 16], channels: 3, cacheBytes, workers: 1 });

    it('cached values equal uncached decodes; the cache counts 1 byte per grey pixel, 3 per colour one, within its bound', async () => {
      for (let i = 0; i < 12; i++) {
        const file = path.join(root, `c${i % 2}`, `${i}.jpg`);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, await jpeg(noise(16, 16, i % 2 === 0), 16, 16, { quality: 90 }, i % 2 === 0));
      }
      const all = Array.from({ length: 12 }, (_, i) => i);
      const uncached = await (await open(0)).train.getMany(all);
      const big = await open(1 << 20);
      const first = await big.train.getMany(all);
      const second = await big.train.getMany(all);
      for (let i = 0; i < 12; i++) {
        expect(Buffer.from(first[i].x.buffer).equals(Buffer.from(uncached[i].x.buffer))).toBe(true);
        expect(Buffer.from(second[i].x.buffer).equals(Buffer.from(uncached[i].x.buffer))).toBe(true);
      }
      const stats = big.train.cacheStats();
      expect(stats).toMatchObject({ entries: 12, hits: 12, misses: 12, evictions: 0, bytes: 6 * 256 + 6 * 768 });
      // Callers get their own arrays: changing one does not change the cache.
      second[0].x.fill(7);
      expect((await big.train.getMany([0]))[0].x[0]).toBe(uncached[0].x[0]);

      // Room for two colour images: every entry fits under the bound, evictions keep it there.
      const small = await open(2 * 768);
      for (let pass = 0; pass < 2; pass++) {
        for (const i of all) {
          const [e] = await small.train.getMany([i]);
          expect(Buffer.from(e.x.buffer).equals(Buffer.from(uncached[i].x.buffer))).toBe(true);
          expect(small.train.cacheStats().bytes).toBeLessThanOrEqual(2 * 768);
        }
      }
      expect(small.train.cacheStats().evictions).toBeGreaterThan(0);
    });
  });
});

describe('batches decoded on the worker pool', () => {
  const open = folderOpener();

  it('duplicates, overlapping calls and more images than one chunk give what decoding each alone gives', async () => {
    const root = path.join(tmp, 'many-small');
    const N = 300; // more than one chunk of 256
    for (let i = 0; i < N; i++) {
      const file = path.join(root, `c${i % 3}`, `${String(i).padStart(3, '0')}.jpg`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, await jpeg(noise(6, 5).map((v, k) => (v + i * 7 + k) & 255) as Buffer, 6, 5, { quality: 90 }));
    }
    const pool = await open(root, { cacheBytes: 0, workers: 2 });
    const alone = await open(root, { cacheBytes: 0, workers: 0 });
    const all = Array.from({ length: N }, (_, i) => i);
    const reference = await alone.train.getMany(all);
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    const batch = await pool.train.getMany(all);
    batch.forEach((e, i) => {
      expect(same(e.x, reference[i].x), `image ${i}`).toBe(true);
      expect(e.y).toBe(reference[i].y);
    });
    const [dup, overlap] = await Promise.all([pool.train.getMany([7, 7, 299, 7]), pool.train.getMany([299, 0, 7])]);
    expect(dup.map((e, k) => same(e.x, reference[[7, 7, 299, 7][k]].x))).toEqual([true, true, true, true]);
    expect(overlap.map((e, k) => same(e.x, reference[[299, 0, 7][k]].x))).toEqual([true, true, true]);
  });
});
