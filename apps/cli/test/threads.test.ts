import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { requireOrSkip, whenDnnlOff } from '../../../tools/testing/require-or-skip.js';
import { missingFashionMnist } from './fashion-mnist.js';

const require = createRequire(import.meta.url);
const cli = path.resolve(__dirname, '../dist/cli.js');
/** A short `kiln train` in a child process (the backend's thread count is fixed once per process), without KILN_NUM_THREADS. */
function train(...extra: string[]) {
  const env = { ...process.env };
  delete env.KILN_NUM_THREADS;
  const out = mkdtempSync(path.join(os.tmpdir(), 'kiln-threads-'));
  const r = spawnSync(
    process.execPath,
    [cli, 'train', '--model', 'lenet5', '--dataset', 'fashion-mnist', '--epochs', '1', '--limit-train', '640', '--val-split', '64', '--backend', 'wasm', '--logger', 'csv', '--out', out, ...extra],
    { encoding: 'utf8', timeout: 120_000, env },
  );
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  return { summary: JSON.parse(lines[lines.length - 1]), stderr: r.stderr };
}

describe('kiln train --threads', () => {
  it('runs the CPU backend with the thread count given, and records it in the summary', (ctx) => {
    requireOrSkip(ctx, missingFashionMnist);
    const { summary, stderr } = train('--threads', '1');
    expect(summary.threads).toBe(1);
    expect(summary.device).toMatch(/\b1 thread\b/);
    expect(stderr).toMatch(/threads: 1 \(--threads\)/);
  }, 120_000);

  it('defaults to every core for oneDNN, whatever the load, and says why', (ctx) => {
    requireOrSkip(ctx, missingFashionMnist);
    const { loadDnnl } = require('@kiln/backend-cpu') as typeof import('@kiln/backend-cpu');
    const dnnl = loadDnnl();
    requireOrSkip(ctx, !dnnl.loaded && `oneDNN kernels not loaded: ${dnnl.reason}`, whenDnnlOff);
    const { summary, stderr } = train();
    expect(summary.threads).toBe(os.availableParallelism());
    expect(stderr).toMatch(new RegExp(`threads: ${os.availableParallelism()} \\(all cores \\(oneDNN`));
  }, 120_000);

  it('refuses a thread count that is not a positive integer, naming the flag', () => {
    const r = spawnSync(process.execPath, [cli, 'train', '--model', 'lenet5', '--threads', 'many'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--threads/);
  });
});
