import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { wasmBackend } from '@kiln/backend-cpu';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, DataFormatError, KilnError, NotFoundError, tf } from '@kiln/core';
import { DataLoader, decodeImage, encodePng, imageFolder, listImageFolder, loadImages, resizePlan } from '@kiln/data';
import { put, folderOpener } from './folder-fixtures.js';

// Each open starts decoding threads (which load libvips): seconds on a loaded machine.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kiln-image-folder-'));
const dir = (...p: string[]) => {
  const d = path.join(tmp, ...p);
  mkdirSync(d, { recursive: true });
  return d;
};

/** Raw RGB(A) pixels as a sharp pipeline. */
const raw = (px: Uint8Array | number[], width: number, height: number, channels: 3 | 4 = 3) => sharp(Buffer.from(Uint8Array.from(px)), { raw: { width, height, channels } });
/** A flat-colour image. */
const flat = (width: number, height: number, rgb: [number, number, number]) => sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
const bytes255 = (x: Float32Array) => Array.from(x, (v) => Math.round(v * 255));

const open = folderOpener();
beforeAll(async () => {
  await wasmBackend().init();
});

describe('folder layout', () => {
  let root: string;
  beforeAll(async () => {
    root = dir('layout');
    const png = await flat(3, 2, [10, 20, 30]).png().toBuffer();
    put(path.join(root, 'dog', 'b.png'), png);
    put(path.join(root, 'dog', 'a.PNG'), png);
    put(path.join(root, 'cat', 'nested', 'deep', 'c.png'), png);
    put(path.join(root, 'cat', 'notes.txt'), 'not an image, left out by its name');
    put(path.join(root, 'cat', '._c.png'), 'macOS resource fork: hidden, left out');
    dir('layout', '.git', 'x');
    const split = dir('split');
    put(path.join(split, 'train', 'ant', '1.png'), png);
    put(path.join(split, 'train', 'bee', '1.png'), png);
    put(path.join(split, 'valid', 'bee', '2.png'), png);
    put(path.join(split, 'test', 'cow', '3.png'), png);
  });

  it('takes classes from sub-folders, sorted, with images found in nested folders', async () => {
    const f = await open(root);
    expect(f.classes).toEqual(['cat', 'dog']);
    expect(f.train.files.map((p) => path.relative(root, p))).toEqual([path.join('cat', 'nested', 'deep', 'c.png'), path.join('dog', 'a.PNG'), path.join('dog', 'b.png')]);
    expect(Array.from(f.train.labels)).toEqual([0, 1, 1]);
    expect(f.val).toBeUndefined();
    expect(f.test).toBeUndefined();
  });

  it('reads train/ val (or valid) / test/ splits with one class numbering across them', async () => {
    const f = await open(path.join(tmp, 'split'));
    expect(f.classes).toEqual(['ant', 'bee', 'cow']);
    expect(Array.from(f.train.labels)).toEqual([0, 1]);
    expect(Array.from(f.val?.labels ?? [])).toEqual([1]);
    expect(Array.from(f.test?.labels ?? [])).toEqual([2]);
    const layout = await listImageFolder(path.join(tmp, 'split'));
    expect(layout.splits.test?.[0].file).toBe(path.join(tmp, 'split', 'test', 'cow', '3.png'));
  });

  it('a missing folder or one without class folders or images is a NotFoundError', async () => {
    await expect(imageFolder(path.join(tmp, 'nope'))).rejects.toBeInstanceOf(NotFoundError);
    put(path.join(tmp, 'flat', 'x.png'), 'x');
    await expect(imageFolder(path.join(tmp, 'flat'))).rejects.toThrow(/class sub-folders/);
    dir('empty-classes', 'a');
    await expect(imageFolder(path.join(tmp, 'empty-classes'))).rejects.toThrow(/images \(\.png, \.jpg, \.jpeg, \.webp\)/);
  });
});

describe('formats as they come', () => {
  const COLOUR: [number, number, number] = [200, 100, 50];
  let root: string;
  beforeAll(async () => {
    root = dir('formats');
    const c = path.join(root, 'c');
    const base = () => flat(6, 4, COLOUR);
    put(path.join(c, 'grey.png'), encodePng(new Uint8Array(6 * 4).fill(90), 6, 4, 1));
    put(path.join(c, 'rgb.png'), await base().png().toBuffer());
    put(path.join(c, 'palette.png'), await base().png({ palette: true }).toBuffer());
    put(path.join(c, 'rgb16.png'), await base().toColourspace('rgb16').png().toBuffer());
    put(path.join(c, 'baseline.jpg'), await base().jpeg({ quality: 95 }).toBuffer());
    put(path.join(c, 'progressive.jpeg'), await base().jpeg({ quality: 95, progressive: true }).toBuffer());
    put(path.join(c, 'lossless.webp'), await base().webp({ lossless: true }).toBuffer());
    put(path.join(c, 'lossy.webp'), await base().webp({ quality: 95 }).toBuffer());
    // Half-transparent: flattened on black, so each channel is scaled by alpha (128/255).
    put(path.join(c, 'rgba.png'), await raw(Array.from({ length: 24 }, () => [200, 100, 50, 128]).flat(), 6, 4, 4).png().toBuffer());
  });

  it('every PNG colour type, JPEG and WebP come out as the same RGB at one size', async () => {
    const f = await open(root, { size: [4, 6], cacheBytes: 0 });
    expect(f.train.shape).toEqual([4, 6, 3]);
    const names = f.train.files.map((p) => path.basename(p));
    const all = await f.train.getMany(names.map((_, i) => i));
    const at = (n: string) => bytes255(all[names.indexOf(n)].x);
    for (const n of ['rgb.png', 'palette.png', 'rgb16.png', 'lossless.webp']) expect(at(n)).toEqual(Array.from({ length: 24 }, () => COLOUR).flat());
    for (const n of ['baseline.jpg', 'progressive.jpeg', 'lossy.webp']) {
      // Lossy on a flat colour: chroma subsampling and quantisation move a channel by a few levels.
      at(n).forEach((v, i) => expect(Math.abs(v - COLOUR[i % 3])).toBeLessThanOrEqual(4));
    }
    expect(at('grey.png')).toEqual(new Array(72).fill(90));
    expect(at('rgba.png')).toEqual(Array.from({ length: 24 }, () => COLOUR.map((v) => Math.round((v * 128) / 255))).flat());
  });

  it('CMYK JPEG is converted to RGB', async () => {
    // White and a dark red-brown, stored as CMYK: white stays white, the colour keeps its hue order.
    const img = Buffer.concat([Buffer.alloc(4 * 3, 255), Buffer.from(Array.from({ length: 4 }, () => [150, 40, 20]).flat())]);
    const cmyk = await raw(img, 4, 2).toColourspace('cmyk').jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const d = bytes255((await decodeImage(cmyk, { file: 'cmyk.jpg' })).data);
    for (let i = 0; i < 12; i++) expect(d[i]).toBeGreaterThanOrEqual(250);
    const [r, g, b] = d.slice(12, 15);
    expect(r).toBeGreaterThan(g);
    expect(g).toBeGreaterThan(b);
    expect(Math.abs(r - 150)).toBeLessThan(25);
  });

  it('EXIF orientation is applied: the image comes out as it is displayed', async () => {
    // Stored 2 high × 3 wide with a red pixel at the top left; orientation 6 shows it turned 90°
    // clockwise: 3 high × 2 wide with the red pixel at the top right.
    const px = new Uint8Array(2 * 3 * 3).fill(0);
    px.set([255, 0, 0], 0);
    const png = await raw(px, 3, 2).png().toBuffer();
    const jpeg = await sharp(png).resize(30, 20, { kernel: 'nearest' }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const d = await decodeImage(jpeg, { file: 'rotated.jpg' });
    expect([d.height, d.width]).toEqual([30, 20]);
    const red = (y: number, x: number) => d.data[(y * 20 + x) * 3];
    expect(red(2, 17)).toBeGreaterThan(0.9);
    expect(red(2, 2)).toBeLessThan(0.1);
    expect(red(27, 17)).toBeLessThan(0.1);
  });

  it('one channel is BT.601 luma of the RGB values', async () => {
    const png = await raw([255, 0, 0, 0, 255, 0, 0, 0, 255], 3, 1).png().toBuffer();
    const d = await decodeImage(png, { channels: 1 });
    expect(d.data[0]).toBeCloseTo(0.299, 6);
    expect(d.data[1]).toBeCloseTo(0.587, 6);
    expect(d.data[2]).toBeCloseTo(0.114, 6);
  });

  it('the messy-folder generator writes a folder of every kind that opens with every image readable', async () => {
    const out = path.join(tmp, 'messy');
    execFileSync(process.execPath, [path.join(here, '..', '..', '..', 'tools', 'fixtures', 'data', 'make-messy-folder.mjs'), '--out', out, '--per-class', '2', '--test-per-class', '1', '--max-size', '40'], { stdio: 'pipe' });
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { file: string; kind: string; height: number; width: number }[];
    expect(new Set(manifest.map((m) => m.kind)).size).toBeGreaterThanOrEqual(10);
    const f = await open(out, { size: [28, 28], channels: 1, resize: 'pad' });
    expect(f.classes.length).toBe(10);
    expect(f.train.length).toBe(20);
    expect(f.test?.length).toBe(10);
    expect(f.skipped).toEqual([]);
    const all = await f.train.getMany(Array.from({ length: 20 }, (_, i) => i));
    for (const e of all) {
      expect(e.x.length).toBe(28 * 28);
      expect(Math.max(...e.x)).toBeGreaterThan(0.2);
    }
  }, 60_000);
});

describe('resize modes', () => {
  it('stretch scales each axis to the target; a flat image stays flat', async () => {
    const d = await decodeImage(await flat(7, 3, [30, 60, 90]).png().toBuffer(), { size: [5, 2], resize: 'stretch' });
    expect(d.data.length).toBe(5 * 2 * 3);
    expect(bytes255(d.data)).toEqual(Array.from({ length: 10 }, () => [30, 60, 90]).flat());
  });

  it('shorter-side at scale 1 is an exact centre crop (odd margin: torchvision rounds half to even)', async () => {
    // 2 × 9 image, column x has red = 20x: cropping to 2 × 2 keeps columns round(7/2) = 4 and 5.
    const px = Array.from({ length: 2 * 9 }, (_, i) => [20 * (i % 9), 0, 0]).flat();
    const d = await decodeImage(await raw(px, 9, 2).png().toBuffer(), { size: [2, 2], resize: 'shorter-side' });
    expect(bytes255(d.data).filter((_, i) => i % 3 === 0)).toEqual([80, 100, 80, 100]);
    expect(resizePlan(2, 9, [2, 2], 'shorter-side')).toEqual({ resize: [2, 9], crop: { top: 0, left: 4 } });
    expect(resizePlan(2, 11, [2, 2], 'shorter-side').crop?.left).toBe(4);
    expect(resizePlan(2, 13, [2, 2], 'shorter-side').crop?.left).toBe(6);
  });

  it('shorter-side matches torchvision Resize + CenterCrop (fixture)', async () => {
    const fx = JSON.parse(readFileSync(path.join(here, '..', '..', '..', 'tools', 'fixtures', 'data', 'resize-crop.json'), 'utf8')) as {
      cases: { height: number; width: number; size: number; resized: [number, number]; input: number[]; output: number[] }[];
    };
    for (const c of fx.cases) {
      expect(resizePlan(c.height, c.width, [c.size, c.size], 'shorter-side').resize).toEqual(c.resized);
      const d = await decodeImage(await raw(c.input, c.width, c.height).png().toBuffer(), { size: [c.size, c.size], resize: 'shorter-side' });
      const got = bytes255(d.data);
      const diff = got.map((v, i) => Math.abs(v - c.output[i]));
      // Both shrink with an antialiased triangle filter and enlarge bilinearly with centres aligned,
      // but PIL works in fixed point and rounds between its horizontal and vertical passes while
      // libvips (and our enlarging) round once: measured, a mean of ≤ 0.2 levels and at most 3. A
      // crop one pixel off would move red by ~10 levels in every pixel.
      const mean = diff.reduce((a, b) => a + b, 0) / diff.length;
      const redShift = got.filter((_, i) => i % 3 === 0).reduce((a, v, i) => a + v - c.output[3 * i], 0) / (got.length / 3);
      expect(mean, `${c.height}×${c.width} → ${c.size}`).toBeLessThan(0.5);
      expect(Math.abs(redShift), `${c.height}×${c.width} → ${c.size}: red bias`).toBeLessThan(0.5);
      expect(Math.max(...diff), `${c.height}×${c.width} → ${c.size}`).toBeLessThanOrEqual(4);
    }
  });

  it('pad fits the image inside and fills the rest with zeros, centred', async () => {
    // 2 × 4 flat image into 4 × 4: scaled by 1, one zero row above and below.
    const d = await decodeImage(await flat(4, 2, [100, 150, 200]).png().toBuffer(), { size: [4, 4], resize: 'pad' });
    const rows = Array.from({ length: 4 }, (_, y) => bytes255(d.data.subarray(y * 12, (y + 1) * 12)));
    expect(rows[0]).toEqual(new Array(12).fill(0));
    expect(rows[3]).toEqual(new Array(12).fill(0));
    expect(rows[1]).toEqual(Array.from({ length: 4 }, () => [100, 150, 200]).flat());
    expect(rows[2]).toEqual(rows[1]);
    // 4 × 2 (tall) into 3 × 5: scaled to 3 × round(1.5) = 3 × 2, columns 1..2 hold it (odd pad on the right).
    expect(resizePlan(4, 2, [3, 5], 'pad')).toEqual({ resize: [3, 2], pad: { top: 0, bottom: 0, left: 1, right: 2 } });
    const t = await decodeImage(await flat(2, 4, [100, 150, 200]).png().toBuffer(), { size: [3, 5], resize: 'pad' });
    const red = bytes255(t.data).filter((_, i) => i % 3 === 0);
    expect(red).toEqual([0, 100, 100, 0, 0, 0, 100, 100, 0, 0, 0, 100, 100, 0, 0]);
  });

  it('mixed sizes are brought to the first image’s size by default', async () => {
    const root = dir('mixed');
    put(path.join(root, 'a', '1.png'), await flat(5, 3, [1, 2, 3]).png().toBuffer());
    put(path.join(root, 'a', '2.jpg'), await flat(50, 70, [1, 2, 3]).jpeg().toBuffer());
    put(path.join(root, 'b', '3.webp'), await flat(8, 8, [1, 2, 3]).webp().toBuffer());
    const f = await open(root);
    expect(f.train.shape).toEqual([3, 5, 3]);
    const all = await f.train.getMany([0, 1, 2]);
    expect(all.map((e) => e.x.length)).toEqual([45, 45, 45]);
    expect(all.map((e) => e.y)).toEqual([0, 0, 1]);
  });

  it('rejects a bad size, resize mode or channel count with a ConfigError', async () => {
    const root = path.join(tmp, 'mixed');
    await expect(imageFolder(root, { size: [0, 3] as [number, number] })).rejects.toBeInstanceOf(ConfigError);
    await expect(imageFolder(root, { resize: 'crop' as 'pad' })).rejects.toBeInstanceOf(ConfigError);
    await expect(imageFolder(root, { channels: 4 as 3 })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('unreadable files', () => {
  let root: string;
  beforeAll(async () => {
    root = dir('bad');
    const good = await flat(4, 4, [9, 9, 9]).jpeg().toBuffer();
    put(path.join(root, 'a', '1-ok.jpg'), good);
    put(path.join(root, 'a', '2-text.png'), 'not an image');
    put(path.join(root, 'a', '3-empty.jpg'), new Uint8Array(0));
    put(path.join(root, 'a', '4-ok.jpg'), good);
    // Header intact, data cut: passes the header probe, fails when decoded.
    const big = await sharp(Buffer.from(Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 37) % 256)), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    put(path.join(root, 'b', '5-truncated.jpg'), big.subarray(0, big.length >> 1));
    put(path.join(root, 'b', '6-ok.jpg'), good);
  });

  it('fail with a DataFormatError naming the file', async () => {
    const err = await imageFolder(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).file).toBe(path.join(root, 'a', '2-text.png'));
    expect((err as Error).message).toMatch(/unreadable image/);
  });

  it('with skipBad: a warning per file and the count at the end; files failing later are replaced by the next readable one', async () => {
    const warnings: string[] = [];
    const f = await open(root, { skipBad: true, onWarning: (m) => warnings.push(m) });
    expect(f.train.files.map((p) => path.basename(p))).toEqual(['1-ok.jpg', '4-ok.jpg', '5-truncated.jpg', '6-ok.jpg']);
    expect(f.skipped.map((s) => path.basename(s.file))).toEqual(['2-text.png', '3-empty.jpg']);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/2-text\.png/);
    expect(warnings[1]).toMatch(/3-empty\.jpg: empty file/);
    expect(warnings[2]).toMatch(/skipped 2 of 6 images/);
    // Index 2 (the truncated file) decodes as index 3, label and all; the file joins `skipped`.
    const [e2, e3] = await f.train.getMany([2, 3]);
    expect(Array.from(e2.x)).toEqual(Array.from(e3.x));
    expect(e2.y).toBe(1);
    expect(f.skipped.map((s) => path.basename(s.file))).toEqual(['2-text.png', '3-empty.jpg', '5-truncated.jpg']);
    expect(warnings[3]).toMatch(/5-truncated\.jpg \(replaced by the next readable image\)/);
    // Once known bad, it is not tried (nor warned about) again.
    await f.train.getMany([2, 2]);
    expect(warnings).toHaveLength(4);
  });

  it('without skipBad, a file failing while decoding raises its DataFormatError', async () => {
    const f = await open(path.join(root), { skipBad: false, probe: false, size: [4, 4] });
    const err = await f.train.getMany([4]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).file).toBe(path.join(root, 'b', '5-truncated.jpg'));
  });
});

describe('hostile files', () => {
  /** A valid PNG signature and IHDR declaring `w × h`, followed by a tiny (wrong) IDAT: 64 bytes that claim 8192². */
  function pngDeclaring(w: number, h: number): Uint8Array {
    const good = encodePng(new Uint8Array(4), 2, 2, 1);
    const out = Uint8Array.from(good);
    const dv = new DataView(out.buffer);
    dv.setUint32(16, w);
    dv.setUint32(20, h);
    // CRC of IHDR (type + data, bytes 12..29) recomputed so the header itself is valid.
    dv.setUint32(29, crc32(out.subarray(12, 29)));
    return out;
  }
  function crc32(b: Uint8Array): number {
    let c = ~0;
    for (const byte of b) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return ~c >>> 0;
  }

  it('an image declaring more pixels than the limit is refused before decoding', async () => {
    const root = dir('bomb');
    put(path.join(root, 'a', 'ok.png'), encodePng(new Uint8Array(4), 2, 2, 1));
    // A real decompression bomb too: 8192×8192 of zeros compresses to about 64 KB.
    const bomb = await sharp({ create: { width: 8192, height: 8192, channels: 3, background: '#000' } }).toColourspace('b-w').png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(200_000);
    put(path.join(root, 'a', 'real-bomb.png'), bomb);
    put(path.join(root, 'a', 'zz-header.png'), pngDeclaring(8192, 8192));
    const warnings: string[] = [];
    const rss0 = process.memoryUsage().rss;
    const f = await open(root, { skipBad: true, onWarning: (m) => warnings.push(m) });
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 1024 * 1024);
    expect(f.skipped.map((s) => path.basename(s.file))).toEqual(['real-bomb.png', 'zz-header.png']);
    expect(f.skipped[0].reason).toMatch(/more pixels than the limit/);
    const err = await imageFolder(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as KilnError).message).toMatch(/at most 50000000 pixels[\s\S]*8192×8192 = 67108864/);
    // The limit is the caller's to set, and the decoder enforces it too.
    await expect(decodeImage(encodePng(new Uint8Array(100), 10, 10, 1), { maxPixels: 99 })).rejects.toThrow(/more pixels than the limit/);
  }, 30_000);

  it('a FIFO, a link to /dev/zero and an oversized file are refused without reading them', async () => {
    const root = dir('special');
    put(path.join(root, 'a', 'ok.png'), encodePng(new Uint8Array(4), 2, 2, 1));
    execFileSync('mkfifo', [path.join(root, 'a', 'fifo.png')]);
    symlinkSync('/dev/zero', path.join(root, 'a', 'zero.png'));
    put(path.join(root, 'a', 'x-large.png'), new Uint8Array(5000));
    const warnings: string[] = [];
    const f = await open(root, { skipBad: true, maxFileBytes: 4096, onWarning: (m) => warnings.push(m) });
    expect(f.train.files.map((p) => path.basename(p))).toEqual(['ok.png']);
    const reasons = Object.fromEntries(f.skipped.map((s) => [path.basename(s.file), s.reason]));
    expect(reasons['fifo.png']).toMatch(/not a regular file/);
    expect(reasons['zero.png']).toMatch(/not a regular file/);
    expect(reasons['x-large.png']).toMatch(/larger than the size limit/);
    const err = await imageFolder(root, { maxFileBytes: 4096 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as KilnError).found).toMatch(/FIFO/);
  }, 10_000);
});

describe('lazy decoding', () => {
  let root: string;
  const N = 40;
  beforeAll(async () => {
    root = dir('many');
    for (let i = 0; i < N; i++) {
      const shade = (i * 6) % 256;
      put(path.join(root, `c${i % 2}`, `${String(i).padStart(3, '0')}.jpg`), await flat(64, 64, [shade, shade, shade]).jpeg({ quality: 95 }).toBuffer());
    }
  });

  it('keeps the cache within its bound over two passes of a folder larger than it', async () => {
    // Grey images are held at one byte per pixel (see small-jpeg.test.ts for colour).
    const image = 64 * 64;
    const cacheBytes = 10 * image + 100;
    const f = await open(root, { cacheBytes, workers: 3 });
    const rss0 = process.memoryUsage().rss;
    for (let pass = 0; pass < 2; pass++) {
      for (let s = 0; s < N; s += 8) {
        const batch = await f.train.getMany(Array.from({ length: 8 }, (_, k) => s + k));
        expect(batch).toHaveLength(8);
        expect(f.train.cacheStats().bytes).toBeLessThanOrEqual(cacheBytes);
      }
    }
    const stats = f.train.cacheStats();
    expect(stats.entries).toBe(10);
    expect(stats.bytes).toBe(10 * image);
    // All 40 images decoded twice (a cycle larger than an LRU evicts every entry before its reuse).
    expect(stats.misses).toBe(2 * N);
    expect(stats.evictions).toBe(2 * N - 10);
    // The decoded folder is 40 × 4 KiB as held (48 KiB as float32 RGB); RSS must not grow by anything like a copy per pass.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(48 * 1024 * 1024);
  });

  it('a cache as large as the folder serves the second pass from memory, identical to the first', async () => {
    const f = await open(root, { cacheBytes: 64 * 1024 * 1024 });
    const first = await f.train.getMany([0, 5, 39]);
    const second = await f.train.getMany([0, 5, 39]);
    expect(second.map((e) => Array.from(e.x))).toEqual(first.map((e) => Array.from(e.x)));
    expect(f.train.cacheStats().hits).toBe(3);
    // Callers get copies: changing one does not change the cache.
    second[0].x.fill(7);
    expect((await f.train.getMany([0]))[0].x[0]).toBe(first[0].x[0]);
  });

  it('materialize() gives an ArrayDataset of the same values; get() says to iterate asynchronously', async () => {
    const f = await open(root, { size: [8, 8], channels: 1 });
    const arr = await f.train.materialize();
    expect(arr.shape).toEqual([8, 8, 1]);
    expect(arr.length).toBe(N);
    expect(Array.from(arr.y.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    const [e] = await f.train.getMany([7]);
    expect(Array.from(arr.get(7).x)).toEqual(Array.from(e.x));
    expect(() => f.train.get(0)).toThrow(/for await/);
    await expect(f.train.getMany([N])).rejects.toBeInstanceOf(ConfigError);
    f.close();
    await expect(f.train.getMany([0])).rejects.toThrow(/closed/);
  });

  it('loadImages reads files as the folder does', async () => {
    const f = await open(root, { size: [16, 12], resize: 'shorter-side' });
    const [viaFolder] = await f.train.getMany([3]);
    const [viaLoad] = await loadImages([f.train.files[3]], { size: [16, 12], resize: 'shorter-side' });
    expect(Array.from(viaLoad)).toEqual(Array.from(viaFolder.x));
    await expect(loadImages([path.join(root, 'missing.jpg')], { size: [4, 4] })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('worker threads and the calling thread decode the same values', async () => {
    const inline = await open(root, { workers: 0, size: [20, 24], resize: 'pad' });
    const pooled = await open(root, { workers: 2, size: [20, 24], resize: 'pad' });
    const idx = [0, 13, 27, 39];
    const [a, b] = await Promise.all([inline.train.getMany(idx), pooled.train.getMany(idx)]);
    expect(b.map((e) => Array.from(e.x))).toEqual(a.map((e) => Array.from(e.x)));
    expect(b.map((e) => e.y)).toEqual(a.map((e) => e.y));
  });

  it('a DataLoader iterates it with for await: every image once per epoch, no tensors left behind', async () => {
    const f = await open(root, { size: [8, 8], cacheBytes: 0 });
    const loader = new DataLoader(f.train, { batchSize: 6, shuffle: true, seed: 3, prefetch: 2 });
    const before = tf.memory().numTensors;
    for (let epoch = 0; epoch < 2; epoch++) {
      const seen: number[] = [];
      for await (const batch of loader) {
        expect(batch.x.shape.slice(1)).toEqual([8, 8, 3]);
        const y = Array.from(batch.y.dataSync());
        expect(y).toEqual(Array.from(batch.indices, (i) => f.train.labels[i]));
        seen.push(...batch.indices);
        tf.dispose([batch.x, batch.y]);
      }
      expect(seen.sort((p, q) => p - q)).toEqual(Array.from({ length: N }, (_, i) => i));
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => [...loader]).toThrow(/for await/);
  });
});
