import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { missingFashionMnist } from './fashion-mnist.js';

const cli = path.resolve(__dirname, '../dist/cli.js');
const preview = (out: string, seed: string) =>
  spawnSync(process.execPath, [cli, 'data', 'preview', '--dataset', 'fashion-mnist', '--augment', 'flip,rotate:15,crop:4', '--count', '16', '--seed', seed, '--backend', 'wasm', '--out', out], {
    encoding: 'utf8',
    timeout: 120_000,
  });

describe('kiln data preview', () => {
  it('writes a PNG grid of augmented images, reproducible under a seed', (ctx) => {
    requireOrSkip(ctx, missingFashionMnist);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-preview-'));
    const a = preview(path.join(dir, 'a.png'), '1');
    expect(a.status, a.stderr).toBe(0);
    const b = preview(path.join(dir, 'b.png'), '1');
    expect(b.status, b.stderr).toBe(0);
    const c = preview(path.join(dir, 'c.png'), '2');
    expect(c.status, c.stderr).toBe(0);
    const bytes = readFileSync(path.join(dir, 'a.png'));
    const png = PNG.sync.read(bytes);
    // 16 images in a 4×4 grid, 28 px enlarged 3× so a class name fits under each, 2 px apart.
    expect(png.width).toBe(4 * (84 + 2) + 2);
    expect(png.height).toBe(4 * (84 + 11 + 1 + 2) + 2);
    // Not a blank image: Fashion-MNIST items are bright on a dark background.
    let bright = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i] > 128) bright++;
    expect(bright / (png.width * png.height)).toBeGreaterThan(0.05);
    expect(readFileSync(path.join(dir, 'b.png')).equals(bytes)).toBe(true);
    expect(readFileSync(path.join(dir, 'c.png')).equals(bytes)).toBe(false);
    expect(JSON.parse(a.stdout.trim().split('\n').pop()!)).toMatchObject({ images: 16, augment: 'flip,rotate:15,crop:4', seed: 1 });
    // Three CLI processes, each starting tfjs and reading the dataset: seconds each on a loaded machine.
  }, 120_000);

  it('names an unknown augmentation and lists the known ones', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-preview-'));
    const r = spawnSync(process.execPath, [cli, 'data', 'preview', '--dataset', 'fashion-mnist', '--augment', 'wobble', '--out', path.join(dir, 'x.png')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/wobble/);
    expect(r.stderr).toMatch(/flip/);
    expect(existsSync(path.join(dir, 'x.png'))).toBe(false);
  });
});
