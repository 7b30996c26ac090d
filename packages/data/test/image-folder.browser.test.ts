/**
 * The browser build of image folders (`@kiln/data` under the `browser` export condition) in Debian's
 * Chromium, driven by playwright-core: the same files decoded by the browser (createImageBitmap +
 * OffscreenCanvas) and by sharp in Node must give the same examples. Needs `apt-get install chromium`
 * and a built dist/; KILN_CHROMIUM overrides the browser path.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, encodePng } from '@kiln/data';
import type * as BrowserData from '../src/index.browser.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';

let browser: Browser;
let page: Page;
let profile: string;

/** The package's browser entry bundled as a page script that puts its exports on `window.kilnData`. */
async function browserBundle(): Promise<string> {
  const result = await build({
    stdin: { contents: "import * as data from '@kiln/data'; globalThis.kilnData = data;", resolveDir: here },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['browser'],
    write: false,
    logLevel: 'error',
  });
  return result.outputFiles[0].text;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or set KILN_CHROMIUM)`);
  profile = mkdtempSync(path.join(os.tmpdir(), 'kiln-data-browser-'));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('about:blank');
  await page.addScriptTag({ type: 'module', content: await browserBundle() });
  await page.waitForFunction(() => 'kilnData' in globalThis, undefined, { timeout: 30_000 });
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

interface Sent {
  path: string;
  b64: string;
}
const send = (p: string, bytes: Uint8Array): Sent => ({ path: p, b64: Buffer.from(bytes).toString('base64') });

interface PageResult {
  classes?: string[];
  files?: string[];
  shape?: number[];
  skipped?: { file: string; reason: string }[];
  x?: number[][];
  y?: number[];
  error: null | { name: string; message: string };
}

/** Opens `files` as a folder in the page and returns what it read. */
async function openInPage(files: Sent[], options: Record<string, unknown>, indices?: number[]): Promise<PageResult> {
  return page.evaluate(
    async ({ files, options, indices }): Promise<PageResult> => {
      const data = (globalThis as unknown as { kilnData: typeof BrowserData }).kilnData;
      const blobs = files.map((f) => ({ path: f.path, blob: new Blob([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))]) }));
      try {
        const folder = await data.imageFolderFromFiles(blobs, { ...options, onWarning: () => undefined });
        const idx = indices ?? Array.from({ length: folder.train.length }, (_, i) => i);
        const examples = await folder.train.getMany(idx);
        const out: PageResult = { classes: folder.classes, files: folder.train.files, shape: folder.train.shape, skipped: folder.skipped.map((s) => ({ ...s })), x: examples.map((e) => Array.from(e.x)), y: examples.map((e) => e.y), error: null };
        folder.close();
        return out;
      } catch (e) {
        return { error: { name: (e as Error).name, message: (e as Error).message } };
      }
    },
    { files, options, indices },
  );
}

const flat = (w: number, h: number, rgb: [number, number, number]) => sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });

describe('image folders in Chromium', () => {
  it('reads PNG (RGB, grey, RGBA), JPEG, WebP and EXIF-rotated JPEG as sharp does in Node', async () => {
    const C: [number, number, number] = [200, 100, 50];
    const corner = new Uint8Array(2 * 3 * 3);
    corner.set([255, 0, 0], 0);
    const files = [
      send('a/rgb.png', await flat(6, 4, C).png().toBuffer()),
      send('a/grey.png', encodePng(new Uint8Array(24).fill(90), 6, 4, 1)),
      send('a/rgba.png', await sharp(Buffer.from(Array.from({ length: 24 }, () => [200, 100, 50, 128]).flat()), { raw: { width: 6, height: 4, channels: 4 } }).png().toBuffer()),
      send('b/flat.jpg', await flat(6, 4, C).jpeg({ quality: 95 }).toBuffer()),
      send('b/lossless.webp', await flat(6, 4, C).webp({ lossless: true }).toBuffer()),
      // Stored 20 high × 30 wide, red block top left; orientation 6 shows it 30 × 20 with red at the top right.
      send('b/rotated.jpg', await sharp(await sharp(Buffer.from(corner), { raw: { width: 3, height: 2, channels: 3 } }).resize(30, 20, { kernel: 'nearest' }).png().toBuffer()).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer()),
    ];
    const got = await openInPage(files, { size: [4, 6] });
    expect(got.error).toBeNull();
    expect(got.classes).toEqual(['a', 'b']);
    expect(got.files).toEqual(['a/grey.png', 'a/rgb.png', 'a/rgba.png', 'b/flat.jpg', 'b/lossless.webp', 'b/rotated.jpg']);
    expect(got.y).toEqual([0, 0, 0, 1, 1, 1]);
    const bytesOf = (name: string) => Buffer.from(files.find((f) => f.path === name)?.b64 as string, 'base64');
    for (let k = 0; k < 5; k++) {
      const name = got.files?.[k] as string;
      const node = await decodeImage(bytesOf(name), { size: [4, 6], file: name });
      const b = (got.x?.[k] as number[]).map((v) => Math.round(v * 255));
      const n = Array.from(node.data, (v) => Math.round(v * 255));
      // Lossless sources decode identically (flattening on black rounds once either way); the two
      // JPEG decoders (Chromium's libjpeg-turbo, sharp's mozjpeg) may differ by a few levels.
      const tol = name.endsWith('.jpg') ? 4 : name === 'a/rgba.png' ? 1 : 0;
      b.forEach((v, i) => expect(Math.abs(v - n[i]), `${name}[${i}]`).toBeLessThanOrEqual(tol));
    }
    // The EXIF-rotated one at its own (displayed, portrait) size, so no resampler is involved:
    // red at the top right, and the same pixels as in Node up to the JPEG decoders' differences.
    const rotated = await openInPage([files[5]], { size: [30, 20] });
    const rot = (rotated.x?.[0] as number[]).map((v) => Math.round(v * 255));
    const node = Array.from((await decodeImage(bytesOf('b/rotated.jpg'), { size: [30, 20] })).data, (v) => Math.round(v * 255));
    expect(rot[(2 * 20 + 17) * 3]).toBeGreaterThan(230);
    expect(rot[(2 * 20 + 2) * 3]).toBeLessThan(25);
    expect(rot[(27 * 20 + 17) * 3]).toBeLessThan(25);
    rot.forEach((v, i) => expect(Math.abs(v - node[i]), `rotated[${i}]`).toBeLessThanOrEqual(8));
  }, 60_000);

  it('pad and shorter-side place the image exactly where Node does', async () => {
    const px = Buffer.from(Array.from({ length: 2 * 9 }, (_, i) => [20 * (i % 9), 0, 0]).flat());
    const files = [send('c/wide.png', await sharp(px, { raw: { width: 9, height: 2, channels: 3 } }).png().toBuffer())];
    const crop = await openInPage(files, { size: [2, 2], resize: 'shorter-side' });
    expect((crop.x?.[0] as number[]).filter((_, i) => i % 3 === 0).map((v) => Math.round(v * 255))).toEqual([80, 100, 80, 100]);
    const pad = await openInPage([send('c/flat.png', await flat(4, 2, [100, 150, 200]).png().toBuffer())], { size: [4, 4], resize: 'pad', channels: 1 });
    const luma = Math.round(0.299 * 100 + 0.587 * 150 + 0.114 * 200);
    expect((pad.x?.[0] as number[]).map((v) => Math.round(v * 255))).toEqual([0, 0, 0, 0, luma, luma, luma, luma, luma, luma, luma, luma, 0, 0, 0, 0]);
  }, 30_000);

  it('shrinks close to torchvision Resize + CenterCrop (fixture)', async () => {
    const fx = JSON.parse(readFileSync(path.join(here, '..', '..', '..', 'tools', 'fixtures', 'data', 'resize-crop.json'), 'utf8')) as { cases: { height: number; width: number; size: number; input: number[]; output: number[] }[] };
    const c = fx.cases[0];
    const png = await sharp(Buffer.from(c.input), { raw: { width: c.width, height: c.height, channels: 3 } }).png().toBuffer();
    const got = await openInPage([send('d/x.png', png)], { size: [c.size, c.size], resize: 'shorter-side' });
    const diff = (got.x?.[0] as number[]).map((v, i) => Math.abs(Math.round(v * 255) - c.output[i]));
    // The browser's "high quality" canvas shrink is its own filter, not PIL's triangle: on this
    // smooth image it agrees to a few levels on average, and a misplaced crop (~10 levels) would show.
    expect(diff.reduce((a, b) => a + b, 0) / diff.length).toBeLessThan(4);
  }, 30_000);

  it('unreadable files and decompression bombs are skipped with skipBad, or fail naming the file', async () => {
    const bomb = Uint8Array.from(encodePng(new Uint8Array(4), 2, 2, 1));
    new DataView(bomb.buffer).setUint32(16, 8192);
    new DataView(bomb.buffer).setUint32(20, 8192);
    const files = [send('e/ok.png', encodePng(new Uint8Array(4), 2, 2, 1)), send('e/text.png', new TextEncoder().encode('not an image')), send('e/bomb.png', bomb)];
    const skipped = await openInPage(files, { skipBad: true });
    expect(skipped.files).toEqual(['e/ok.png']);
    expect(Object.fromEntries((skipped.skipped ?? []).map((s) => [s.file, s.reason]))).toEqual({ 'e/bomb.png': expect.stringMatching(/more pixels than the limit/), 'e/text.png': expect.stringMatching(/unreadable image/) });
    const failed = await openInPage(files, {});
    expect(failed.error?.name).toBe('DataFormatError');
    expect(failed.error?.message).toMatch(/e\/bomb\.png|e\/text\.png/);
  }, 30_000);

  it('takes the Files of a directory picker: the first part of webkitRelativePath is the root, split folders work', async () => {
    const png = (await flat(3, 2, [10, 20, 30]).png().toBuffer()).toString('base64');
    const got = await page.evaluate(async (b64) => {
      const data = (globalThis as unknown as { kilnData: typeof BrowserData }).kilnData;
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const picked = ['photos/train/cat/1.png', 'photos/train/dog/2.png', 'photos/val/dog/3.png', 'photos/train/dog/.hidden.png', 'photos/notes.txt'].map((p) => {
        const f = new File([bytes], p.split('/').pop() as string);
        // What <input webkitdirectory> sets; a constructed File has it empty.
        Object.defineProperty(f, 'webkitRelativePath', { value: p });
        return f;
      });
      const folder = await data.imageFolderFromFiles(picked);
      const out = { root: folder.root, classes: folder.classes, train: folder.train.files, val: folder.val?.files, y: Array.from(folder.train.labels), shape: folder.train.shape };
      folder.close();
      return out;
    }, png);
    expect(got).toEqual({ root: 'photos', classes: ['cat', 'dog'], train: ['train/cat/1.png', 'train/dog/2.png'], val: ['val/dog/3.png'], y: [0, 1], shape: [2, 3, 3] });
  }, 30_000);
});
