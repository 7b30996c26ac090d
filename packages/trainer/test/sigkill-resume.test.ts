import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';

// The WASM backend picks its thread count from the machine's idle cores; pin it so the killed,
// the resumed and the uninterrupted runs compute with the same reduction order.
const pinned = { ...process.env, KILN_NUM_THREADS: '1' };

const child = path.join(__dirname, 'fixtures', 'train-child.mjs');
const built = existsSync(path.join(__dirname, '..', 'dist', 'index.js'));

function finalOf(dir: string): { weights: Record<string, number[]>; metrics: Record<string, number>; globalStep: number } {
  return JSON.parse(readFileSync(path.join(dir, 'final.json'), 'utf8'));
}

/** Runs the child until it prints `step N`, then kills it with SIGKILL. */
function runAndKill(dir: string, step: number): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, '', String(step)], { stdio: ['ignore', 'pipe', 'pipe'], env: pinned });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes(`step ${step}\n`)) p.kill('SIGKILL');
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code, signal) => (signal ? resolve(signal) : reject(new Error(`child exited with ${code} before step ${step}: ${err}`))));
  });
}

describe('resume after SIGKILL', () => {
  it('a run killed mid-epoch and resumed from its last checkpoint ends identical to an uninterrupted run', async (ctx) => {
    requireOrSkip(ctx, !built && 'packages/trainer/dist is not built (the child process runs it): npm run build');
    const fullDir = mkdtempSync(path.join(os.tmpdir(), 'kiln-full-'));
    const full = spawnSync(process.execPath, [child, fullDir], { encoding: 'utf8', timeout: 60_000, env: pinned });
    expect(full.status, full.stderr).toBe(0);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-kill-'));
    // 5 batches per epoch: step 8 is the 3rd batch of epoch 2; the last checkpoint is from step 6.
    expect(await runAndKill(dir, 8)).toBe('SIGKILL');
    expect(existsSync(path.join(dir, 'final.json'))).toBe(false);
    expect(readdirSync(path.join(dir, 'checkpoints')).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const resumed = spawnSync(process.execPath, [child, dir, path.join(dir, 'checkpoints', 'last.ckpt')], { encoding: 'utf8', timeout: 60_000, env: pinned });
    expect(resumed.status, resumed.stderr).toBe(0);
    // The resumed process starts at step 7: nothing before the checkpoint is replayed.
    expect(resumed.stdout.split('\n')[0]).toBe('step 7');

    const a = finalOf(fullDir);
    const b = finalOf(dir);
    expect(b.globalStep).toBe(a.globalStep);
    let diff = 0;
    for (const k of Object.keys(a.weights)) a.weights[k].forEach((v, i) => (diff = Math.max(diff, Math.abs(v - b.weights[k][i]))));
    expect(diff).toBeLessThanOrEqual(1e-6);
    for (const k of ['train_loss', 'val_loss', 'val_acc']) expect(b.metrics[k]).toBeCloseTo(a.metrics[k], 6);
  }, 120_000);
});
