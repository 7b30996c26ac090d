import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '@kiln/core';

// Same reduction order in every process (the WASM backend otherwise follows the machine's idle cores).
const pinned = { ...process.env, KILN_NUM_THREADS: '1' };
const child = path.join(__dirname, 'fixtures', 'train-child-logged.mjs');
const TOTAL_STEPS = 50;

/** Columns that depend on the clock, not on the training. */
const CLOCK = new Set(['train_samples_per_sec', 'wall_time']);

function csvRows(dir: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(path.join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v]).filter(([c]) => !CLOCK.has(c))));
}

function jsonlMetrics(dir: string): Record<string, unknown>[] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((o) => o.type === 'metrics')
    .map((o) => Object.fromEntries(Object.entries(o).filter(([k]) => !CLOCK.has(k))));
}

/**
 * Starts the child (resuming from last.ckpt when there is one) and SIGKILLs it `delayMs` after the
 * `nth` step it runs (never, when the run ends first).
 */
function runAndKill(dir: string, nth: number, delayMs: number): Promise<'killed' | 'finished'> {
  const last = path.join(dir, 'checkpoints', 'last.ckpt');
  const resume = existsSync(last) ? last : '';
  // A run that never reached its first checkpoint starts over as a fresh run.
  if (!resume) for (const f of ['metrics.csv', 'metrics.jsonl']) rmSync(path.join(dir, f), { force: true });
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, resume], { stdio: ['ignore', 'pipe', 'pipe'], env: pinned });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      const before = out.split('\n').length;
      out += d;
      if (before <= nth && out.split('\n').length > nth) setTimeout(() => p.kill('SIGKILL'), delayMs);
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code, signal) => {
      const outcome: 'killed' | 'finished' | undefined = signal === 'SIGKILL' ? 'killed' : code === 0 ? 'finished' : undefined;
      if (outcome) resolve(outcome);
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

describe('repeated SIGKILL at random moments', () => {
  it('every resume ends with the uninterrupted run\'s weights, and the logs have no duplicated or missing rows', async () => {
    const fullDir = mkdtempSync(path.join(os.tmpdir(), 'kiln-full-'));
    const full = spawnSync(process.execPath, [child, fullDir, ''], { encoding: 'utf8', timeout: 60_000, env: pinned });
    expect(full.status, full.stderr).toBe(0);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-kills-'));
    const rng = new Rng(2024);
    let kills = 0;
    for (let attempt = 0; attempt < 30; attempt++) {
      // Kill after 1–3 steps and a random few milliseconds more (inside checkpoint or log writes,
      // validation, or the next step); a step of this model takes milliseconds, so each attempt
      // advances a few steps of the 50 and the run cannot end before its 8 kills. Then it runs to
      // its end.
      const outcome = attempt < 8 ? await runAndKill(dir, 1 + rng.int(3), rng.int(8)) : await runAndKill(dir, TOTAL_STEPS + 1, 0);
      if (outcome === 'killed') kills++;
      else break;
    }
    expect(kills).toBe(8);
    expect(existsSync(path.join(dir, 'final.json'))).toBe(true);
    expect(readdirSync(path.join(dir, 'checkpoints')).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const a = JSON.parse(readFileSync(path.join(fullDir, 'final.json'), 'utf8'));
    const b = JSON.parse(readFileSync(path.join(dir, 'final.json'), 'utf8'));
    expect(b.globalStep).toBe(a.globalStep);
    for (const k of Object.keys(a.weights)) expect(b.weights[k]).toEqual(a.weights[k]);
    expect(csvRows(dir)).toEqual(csvRows(fullDir));
    expect(jsonlMetrics(dir)).toEqual(jsonlMetrics(fullDir));
  }, 240_000);
});
