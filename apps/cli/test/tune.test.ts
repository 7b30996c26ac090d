import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { kiln, writeImageFolder } from './helpers.js';

const tmp = (name: string) => mkdtempSync(path.join(os.tmpdir(), `kiln-tune-${name}-`));
const CLASSES = ['dark', 'grey', 'light'];
/** A tiny image folder and the same data and model flags `kiln train` takes. */
function trainFlags(): string[] {
  const root = tmp('folder');
  writeImageFolder(root, CLASSES, { train: 16, test: 2 });
  return ['--model', 'lenet5', '--dataset', `folder:${root}`, '--image-size', '16x16', '--channels', '1', '--val-split', '0', '--batch-size', '4', '--backend', 'wasm'];
}

describe('kiln tune', () => {
  it('lr: writes the range-test plot and prints {"suggested_lr": …} as the last stdout line', async () => {
    const out = tmp('lr');
    const r = await kiln('tune', 'lr', ...trainFlags(), '--start-lr', '1e-5', '--end-lr', '10', '--num-steps', '40', '--out', out);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(Object.keys(r.result)).toContain('suggested_lr');
    expect(r.result.suggested_lr).toBeGreaterThan(1e-5);
    expect(r.result.suggested_lr).toBeLessThan(10);
    const png = path.join(out, 'lr-find.png');
    const img = PNG.sync.read(readFileSync(png));
    expect([img.width, img.height]).toEqual([480, 320]);
    const sweep = JSON.parse(readFileSync(path.join(out, 'lr-find.json'), 'utf8'));
    expect(sweep.suggested_lr).toBe(r.result.suggested_lr);
    expect(sweep.lrs[0]).toBeCloseTo(1e-5, 12);
  }, 120_000);

  it('batch-size: searches up to --max-batch-size, writes the plot and report, and prints {"suggested_batch_size": …} last', async () => {
    const out = tmp('bs');
    const r = await kiln('tune', 'batch-size', ...trainFlags(), '--max-batch-size', '16', '--steps', '1', '--out', out);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.result.suggested_batch_size).toBeGreaterThanOrEqual(4);
    expect(r.result.suggested_batch_size).toBeLessThanOrEqual(16);
    const report = JSON.parse(readFileSync(path.join(out, 'batch-size.json'), 'utf8'));
    expect(report.trials.map((t: { batch_size: number }) => t.batch_size)).toEqual(expect.arrayContaining([4]));
    expect(report.suggested_batch_size).toBe(r.result.suggested_batch_size);
    expect(existsSync(path.join(out, 'batch-size.png'))).toBe(true);
    // A budget under the smallest step's peak: nothing fits, and the command says so instead of crashing.
    const tiny = await kiln('tune', 'batch-size', ...trainFlags(), '--memory-budget', '0.001', '--steps', '1', '--out', tmp('bs2'));
    expect(tiny.code).not.toBe(0);
    expect(tiny.err.join('\n')).toMatch(/memory budget/);
  }, 120_000);

  it('names a wrong sub-command and a bad flag', async () => {
    const a = await kiln('tune', 'momentum', '--model', 'lenet5');
    expect(a.code).not.toBe(0);
    expect(a.err.join('\n')).toMatch(/tune momentum/);
    const b = await kiln('tune', 'batch-size', '--model', 'lenet5', '--mode', 'sideways');
    expect(b.code).not.toBe(0);
    expect(b.err.join('\n')).toMatch(/--mode/);
  });
});
