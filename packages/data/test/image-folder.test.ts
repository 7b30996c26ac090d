import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataFormatError, NotFoundError } from '@kiln/core';
import { decodeImage, encodePng, imageFolder } from '@kiln/data';

const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-image-folder-'));

/** A 4×3 RGB image whose pixel (y, x) is (10y + x, 100 + k, 200) with class-specific k. */
function pixels(k: number): Uint8Array {
  const p = new Uint8Array(4 * 3 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) p.set([10 * y + x, 100 + k, 200], (y * 3 + x) * 3);
  return p;
}

beforeAll(() => {
  for (const [cls, k] of [['cat', 1], ['dog', 2]] as const) {
    mkdirSync(path.join(root, cls), { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(path.join(root, cls, `${i}.png`), encodePng(pixels(k + 10 * i), 3, 4, 3));
  }
  // A flat-colour JPEG (lossy, so only approximately equal) and a file that is not a readable image.
  const rgba = new Uint8Array(3 * 4 * 4);
  for (let p = 0; p < 12; p++) rgba.set([40, 120, 200, 255], 4 * p);
  writeFileSync(path.join(root, 'dog', 'z.jpg'), jpeg.encode({ data: rgba, width: 3, height: 4 }, 95).data);
  writeFileSync(path.join(root, 'dog', 'notes.txt'), 'not an image, ignored by extension');
  const bad = path.join(root, '..', path.basename(root) + '-bad');
  mkdirSync(path.join(bad, 'a'), { recursive: true });
  writeFileSync(path.join(bad, 'a', 'ok.png'), encodePng(pixels(0), 3, 4, 3));
  writeFileSync(path.join(bad, 'a', 'broken.png'), encodePng(pixels(0), 3, 4, 3).subarray(0, 40));
  writeFileSync(path.join(bad, 'a', 'z-big.png'), encodePng(new Uint8Array(5 * 5), 5, 5, 1));
});

const badRoot = () => path.join(root, '..', path.basename(root) + '-bad');

describe('image folder', () => {
  it('decodes PNG and JPEG in worker threads, classes in sorted order', async () => {
    const ds = await imageFolder(root, { workers: 2 });
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.shape).toEqual([4, 3, 3]);
    expect(Array.from(ds.y)).toEqual([0, 0, 0, 1, 1, 1, 1]);
    const first = ds.get(0).x;
    expect(Array.from(first.subarray(0, 6), (v) => Math.round(v * 255))).toEqual([0, 101, 200, 1, 101, 200]);
    // Pixel (3, 2) of cat/2.png.
    expect(Math.round(ds.get(2).x[(3 * 3 + 2) * 3] * 255)).toBe(32);
    const jpg = ds.get(6).x;
    for (let p = 0; p < 12; p++) {
      expect(Math.abs(jpg[3 * p] * 255 - 40)).toBeLessThan(6);
      expect(Math.abs(jpg[3 * p + 2] * 255 - 200)).toBeLessThan(6);
    }
    // The same result on the calling thread.
    const inline = await imageFolder(root, { workers: 0 });
    expect(Array.from(inline.x)).toEqual(Array.from(ds.x));
  });

  it('greyscale decoding uses BT.601 luma', () => {
    const img = decodeImage(encodePng(Uint8Array.from([255, 0, 0, 0, 0, 255]), 2, 1, 3), 'g.png', 1);
    expect(img.data[0]).toBeCloseTo(0.299, 6);
    expect(img.data[1]).toBeCloseTo(0.114, 6);
  });

  it('a corrupt or odd-sized image fails naming the file, or is skipped with a warning when asked', async () => {
    let err: unknown;
    try {
      await imageFolder(badRoot(), { workers: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).file).toMatch(/(broken|z-big)\.png$/);
    const warnings: string[] = [];
    const ds = await imageFolder(badRoot(), { workers: 1, skipBad: true, onWarning: (m) => warnings.push(m) });
    expect(ds.length).toBe(1);
    expect(warnings.length).toBe(2);
    expect(warnings.join('\n')).toMatch(/broken\.png/);
    expect(warnings.join('\n')).toMatch(/z-big\.png: image size differs/);
    await expect(imageFolder(path.join(root, 'nope'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('wrong magic bytes give the offset and what was found', () => {
    try {
      decodeImage(Uint8Array.from([1, 2, 3]), 'x.png');
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(DataFormatError);
      expect((e as DataFormatError).offset).toBe(0);
      expect((e as DataFormatError).found).toBe('01 02 03');
    }
  });
});
