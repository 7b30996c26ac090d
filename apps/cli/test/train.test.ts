import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { missingFashionMnist } from './fashion-mnist.js';
import { writeImageFolder } from './helpers.js';

const cli = path.resolve(__dirname, '../dist/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('kiln train', () => {
  it('trains LeNet-5 on a Fashion-MNIST subset, writes metrics.csv and summary.json, and ends stdout with the JSON summary', (ctx) => {
    requireOrSkip(ctx, missingFashionMnist);
    const out = mkdtempSync(path.join(os.tmpdir(), 'kiln-train-'));
    const r = run('train', '--model', 'lenet5', '--dataset', 'fashion-mnist', '--epochs', '2', '--limit-train', '3000', '--val-split', '500', '--seed', '3', '--backend', 'wasm', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]);
    for (const k of ['model', 'dataset', 'backend', 'epochs', 'seed', 'test_accuracy', 'test_loss', 'train_samples_per_sec', 'wall_seconds']) expect(summary).toHaveProperty(k);
    expect(summary).toMatchObject({ model: 'lenet5', dataset: 'fashion-mnist', backend: 'wasm', epochs: 2, seed: 3, train_examples: 2500, val_examples: 500, parameters: 61706 });
    // 2,500 examples for 2 epochs is far from converged, but well above chance (0.1).
    expect(summary.test_accuracy).toBeGreaterThan(0.6);
    expect(JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'))).toEqual(summary);
    const csv = readFileSync(path.join(out, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(3); // header + one row per epoch
    const header = csv[0].split(',');
    expect(header).toEqual(expect.arrayContaining(['epoch', 'train_loss', 'train_acc', 'val_loss', 'val_acc']));
    expect(csv.slice(1).map((l) => Number(l.split(',')[header.indexOf('epoch')]))).toEqual([0, 1]);
    expect(r.stderr).toMatch(/backend: wasm/);
    expect(r.stderr).toMatch(/epoch 2/);
  }, 120_000);

  it('reports a missing dataset with the ways to provide it, exit code 1 and no stack trace', () => {
    const r = run('train', '--model', 'lenet5', '--dataset', 'fashion-mnist', '--data-dir', '/nonexistent/kiln-data');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Fashion-MNIST could not be found/);
    expect(r.stderr).toMatch(/apt-get install dataset-fashion-mnist/);
    expect(r.stderr).toMatch(/KILN_DATA_DIR/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('reads the data while the backend starts: a backend that cannot start is the error reported, and nothing is left running', () => {
    // Both fail: the backend's error is the one reported (the data's, already settled, stays silent).
    const both = run('train', '--model', 'lenet5', '--dataset', 'fashion-mnist', '--data-dir', '/nonexistent/kiln-data', '--backend', 'nope', '--out', mkdtempSync(path.join(os.tmpdir(), 'kiln-train-')));
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/invalid value for 'backend'/);
    expect(both.stderr).not.toMatch(/Fashion-MNIST|Unhandled|^\s+at /m);
    // A folder being decoded when the backend fails is closed: the process exits instead of waiting on its workers.
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-train-folder-'));
    writeImageFolder(root, ['a', 'b'], { train: 4, test: 2 });
    const folder = run('train', '--model', 'lenet5', '--dataset', `folder:${root}`, '--image-size', '16x16', '--backend', 'nope', '--out', mkdtempSync(path.join(os.tmpdir(), 'kiln-train-')));
    expect(folder.status).toBe(2);
    expect(folder.stderr).toMatch(/invalid value for 'backend'/);
  }, 120_000);

  it('rejects bad options with exit code 2, naming the flag', () => {
    const r = run('train', '--model', 'lenet5', '--epochs', 'zero');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--epochs/);
    const u = run('train', '--model', 'lenet5', '--no-such-flag');
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/no-such-flag/);
    const m = run('train', '--model', 'resnet9000');
    expect(m.status).toBe(2);
    expect(m.stderr).toMatch(/one of: lenet5/);
    // Three CLI processes: seconds each on a loaded machine.
  }, 60_000);
});
