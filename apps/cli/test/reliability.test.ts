import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, encodeNpy } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { checkpointTensors, readCheckpoint } from '@kiln/trainer';

const cli = path.resolve(__dirname, '../dist/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, KILN_NUM_THREADS: '1' } });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-rel-'));
/** A small, fast Fashion-MNIST run. */
const small = ['train', '--model', 'lenet5', '--dataset', 'fashion-mnist', '--backend', 'wasm', '--epochs', '1', '--limit-train', '512', '--val-split', '128', '--seed', '1'];

function last(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** True when every tensor of the checkpoint is finite. */
function finiteCheckpoint(file: string): boolean {
  const ck = readCheckpoint(file);
  try {
    return Object.values(ck.modelState).every((t) => tf.all(tf.isFinite(t)).dataSync()[0] === 1);
  } finally {
    tf.dispose(checkpointTensors(ck));
  }
}

beforeAll(async () => {
  await wasmBackend().init();
});

describe('the CLI when training goes wrong', () => {
  it('a diverging run stops at the first non-finite gradient, exits 1 naming step, rate and parameter, and writes no non-finite checkpoint', () => {
    const out = tmp();
    const r = run(...small, '--optimizer', 'sgd', '--lr', '1e6', '--out', out);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/became non-finite at step \d+/);
    expect(r.stderr).toMatch(/learning rate 1000000/);
    expect(r.stderr).toMatch(/first non-finite gradient: '[\w.]+'/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const dir = path.join(out, 'checkpoints');
    for (const f of existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.ckpt')) : []) expect(finiteCheckpoint(path.join(dir, f))).toBe(true);
  }, 180_000);

  it('--on-nan skip drops the bad updates and finishes', () => {
    const out = tmp();
    const r = run(...small, '--optimizer', 'sgd', '--lr', '1e6', '--on-nan', 'skip', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/skipping the update of step/);
    expect(finiteCheckpoint(path.join(out, 'checkpoints', 'last.ckpt'))).toBe(true);
  }, 180_000);

  it('a reused --out never overwrites the earlier run; a resume with other data flags is refused, naming them', () => {
    const out = tmp();
    const a = run(...small, '--out', out);
    expect(a.status, a.stderr).toBe(0);
    const first = readFileSync(path.join(out, 'summary.json'), 'utf8');
    const b = run(...small, '--out', out);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/holds an earlier run; this run writes to .*version_1/);
    expect(readFileSync(path.join(out, 'summary.json'), 'utf8')).toBe(first);
    expect(existsSync(path.join(out, 'version_1', 'summary.json'))).toBe(true);
    expect(readFileSync(path.join(out, 'metrics.csv'), 'utf8').trim().split('\n')).toHaveLength(2);

    const c = run(...small.map((v, i) => (small[i - 1] === '--limit-train' ? '256' : v)), '--batch-size', '32', '--epochs', '2', '--out', out, '--resume', path.join(out, 'checkpoints', 'last.ckpt'));
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/--batch-size: 64 in the checkpoint, 32 now/);
    expect(c.stderr).toMatch(/--limit-train: 512 in the checkpoint, 256 now/);
  }, 300_000);

  it('reports the test confusion matrix and per-class metrics (train and evaluate)', () => {
    const out = tmp();
    const r = run(...small, '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const summary = last(r.stdout) as { test_report: Record<string, number>; confusion_matrix: string; classes: string[]; test_accuracy: number };
    expect(summary.confusion_matrix).toBe(path.join(out, 'confusion_matrix.png'));
    expect([...readFileSync(summary.confusion_matrix).subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
    for (const c of summary.classes) for (const m of ['precision', 'recall', 'f1', 'support']) expect(summary.test_report).toHaveProperty(`${m}/${c}`);
    expect(summary.test_report.accuracy).toBeCloseTo(summary.test_accuracy, 6);
    const e = run('evaluate', '--weights', path.join(out, 'checkpoints', 'best.ckpt'), '--backend', 'wasm');
    expect(e.status, e.stderr).toBe(0);
    const ev = last(e.stdout) as { confusion_matrix: string; test_report: Record<string, number> };
    expect(existsSync(ev.confusion_matrix)).toBe(true);
    expect(path.dirname(ev.confusion_matrix)).toBe(out);
  }, 300_000);
});

describe('the CLI on bad files', () => {
  it('gives typed errors for a uint8 or empty .npy, an --output directory and a config FIFO, without stray files', () => {
    const dir = tmp();
    const weights = path.join(dir, 'w.safetensors');
    const imp = run('summary', '--model', 'lenet5');
    expect(imp.status, imp.stderr).toBe(0);
    // A weight file to predict with: a fresh checkpoint from a tiny run.
    const t = run(...small, '--limit-train', '256', '--out', path.join(dir, 'run'));
    expect(t.status, t.stderr).toBe(0);
    const ckpt = path.join(dir, 'run', 'checkpoints', 'last.ckpt');
    writeFileSync(path.join(dir, 'u8.npy'), encodeNpy({ dtype: 'uint8', shape: [2, 1, 28, 28], data: new Uint8Array(2 * 784) }));
    const u = run('predict', '--model', 'lenet5', '--weights', ckpt, '--input', path.join(dir, 'u8.npy'), '--output', path.join(dir, 'y.npy'));
    expect(u.status).toBe(1);
    expect(u.stderr).toMatch(/expected floating-point images[\s\S]*astype\(np.float32\)/);
    writeFileSync(path.join(dir, 'empty.npy'), encodeNpy({ dtype: 'float32', shape: [0, 1, 28, 28], data: new Float32Array(0) }));
    const em = run('predict', '--model', 'lenet5', '--weights', ckpt, '--input', path.join(dir, 'empty.npy'), '--output', path.join(dir, 'y.npy'));
    expect(em.status).toBe(1);
    expect(em.stderr).toMatch(/holds no images/);
    writeFileSync(path.join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [2, 1, 28, 28], data: new Float32Array(2 * 784) }));
    mkdirSync(path.join(dir, 'outdir'));
    const od = run('predict', '--model', 'lenet5', '--weights', ckpt, '--input', path.join(dir, 'x.npy'), '--output', path.join(dir, 'outdir'));
    expect(od.status).toBe(1);
    expect(od.stderr).toMatch(/cannot write[\s\S]*not a directory|give a file name/);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    for (const s of [u, em, od]) expect(s.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(weights)).toBe(false);
    const fifo = path.join(dir, 'study.yaml');
    execFileSync('mkfifo', [fifo]);
    const f = run('train', '--model', 'lenet5', '--config', fifo);
    expect(f.status).toBe(1);
    expect(f.stderr).toMatch(/not a regular file/);
  }, 300_000);
});
