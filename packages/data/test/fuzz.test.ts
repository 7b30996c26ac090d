import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { KilnError, Rng } from '@kiln/core';
import { csvDataset, decodeImage, encodePng, imageFolder, parseCifar, parseCsv, parseIdx, readIdxFile } from '@kiln/data';

/*
 * Property tests: every reader is fed random, truncated and mutated byte buffers. Whatever happens,
 * the only errors allowed are KilnErrors (never RangeError, TypeError, …), and each case is fast.
 */

const CASES = 300;

/** Random buffers: pure noise, then truncations and byte flips of a valid seed file. */
function* inputs(valid: Uint8Array, rng: Rng): Generator<Uint8Array> {
  for (let k = 0; k < CASES; k++) {
    const mode = k % 3;
    if (mode === 0) {
      const b = new Uint8Array(rng.int(64));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
      yield b;
    } else if (mode === 1) {
      yield valid.slice(0, rng.int(valid.length + 1));
    } else {
      const b = valid.slice();
      const flips = 1 + rng.int(4);
      for (let f = 0; f < flips; f++) b[rng.int(b.length)] = rng.int(256);
      yield b;
    }
  }
}

function check(name: string, valid: Uint8Array, read: (b: Uint8Array) => unknown, seed = 1): void {
  const rng = new Rng(seed);
  let typed = 0;
  for (const bytes of inputs(valid, rng)) {
    const t0 = performance.now();
    try {
      read(bytes);
    } catch (e) {
      if (!(e instanceof KilnError)) throw new Error(`${name} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} on [${Array.from(bytes.subarray(0, 32))}] (${bytes.length} bytes)`);
      typed++;
    }
    expect(performance.now() - t0).toBeLessThan(2000);
  }
  // The inputs are hostile enough that most of them must be rejected.
  expect(typed).toBeGreaterThan(CASES / 3);
}

/** `check` for asynchronous readers. */
async function checkAsync(name: string, valid: Uint8Array, read: (b: Uint8Array) => Promise<unknown>, seed = 1): Promise<void> {
  const rng = new Rng(seed);
  let typed = 0;
  for (const bytes of inputs(valid, rng)) {
    const t0 = performance.now();
    try {
      await read(bytes);
    } catch (e) {
      if (!(e instanceof KilnError)) throw new Error(`${name} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} on [${Array.from(bytes.subarray(0, 32))}] (${bytes.length} bytes)`);
      typed++;
    }
    expect(performance.now() - t0).toBeLessThan(2000);
  }
  expect(typed).toBeGreaterThan(CASES / 3);
}

function idx(): Uint8Array {
  return Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, ...Array.from({ length: 8 }, (_, i) => i)]);
}

describe('readers under random bytes raise only typed errors', () => {
  it('IDX (raw)', () => check('parseIdx', idx(), (b) => parseIdx(b, 'fuzz.idx')));

  it('IDX (gzip, from disk)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-fuzz-'));
    const file = path.join(dir, 'f.gz');
    check('readIdxFile', new Uint8Array(gzipSync(idx())), (b) => {
      writeFileSync(file, b);
      return readIdxFile(file);
    });
  });

  it('CIFAR', () => {
    const valid = new Uint8Array(3073 * 2);
    valid[3073] = 4;
    check('parseCifar', valid, (b) => parseCifar(b, 'fuzz.bin'));
    check('parseCifar(100)', new Uint8Array(3074), (b) => parseCifar(b, 'fuzz.bin', { variant: 100 }), 2);
  });

  it('CSV', () => {
    const valid = new TextEncoder().encode('a,b,label\n1.5,"2",x\n3,4,y\n');
    check('csv', valid, (b) => csvDataset(parseCsv(b, 'fuzz.csv'), 'fuzz.csv'));
  });

  it('PNG', async () => {
    const valid = encodePng(Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => i), 5, 4, 3);
    await checkAsync('decodeImage(png)', valid, (b) => decodeImage(b, { file: 'fuzz.png', size: [4, 4] }));
  });

  it('JPEG and WebP', async () => {
    const pixels = Buffer.from(Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 13) % 256));
    const raw = { raw: { width: 8, height: 8, channels: 3 as const } };
    await checkAsync('decodeImage(jpeg)', new Uint8Array(await sharp(pixels, raw).jpeg({ quality: 80 }).toBuffer()), (b) => decodeImage(b, { file: 'fuzz.jpg', size: [4, 4] }));
    await checkAsync('decodeImage(webp)', new Uint8Array(await sharp(pixels, raw).webp().toBuffer()), (b) => decodeImage(b, { file: 'fuzz.webp', size: [4, 4] }), 3);
  });
});

describe('image folder under corrupt files', () => {
  it('with skipBad, mutated images in worker threads are skipped or decoded, never a crash', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-fuzz-folder-'));
    const valid = encodePng(Uint8Array.from({ length: 6 * 6 * 3 }, (_, i) => (i * 5) % 256), 6, 6, 3);
    const rng = new Rng(9);
    const dir = path.join(root, 'only');
    mkdirSync(dir);
    let k = 0;
    for (const b of inputs(valid, rng)) {
      if (k >= 40) break;
      writeFileSync(path.join(dir, `${String(k++).padStart(3, '0')}.png`), b);
    }
    writeFileSync(path.join(dir, 'zzz.png'), valid);
    const warnings: string[] = [];
    const folder = await imageFolder(root, { workers: 2, skipBad: true, onWarning: (m) => warnings.push(m) });
    const atOpen = folder.skipped.length;
    expect(folder.train.length + atOpen).toBe(41);
    expect(atOpen).toBeGreaterThan(10);
    // Files that pass the header probe but fail to decode are replaced; every example has the full size.
    const all = await folder.train.getMany(Array.from({ length: folder.train.length }, (_, i) => i));
    for (const e of all) expect(e.x.length).toBe(6 * 6 * 3);
    expect(warnings.filter((w) => w.startsWith('warning: skipping'))).toHaveLength(folder.skipped.length);
    folder.close();
  });
});
