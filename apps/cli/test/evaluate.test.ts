import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { parseFlatYaml } from '../src/commands/run-config.js';
import { missingFashionMnist } from './fashion-mnist.js';

const cli = path.resolve(__dirname, '../dist/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);

describe('kiln train checkpoints, loggers and config; kiln evaluate', () => {
  it('a YAML config drives the run; checkpoints resume; evaluate reproduces the test accuracy', (ctx) => {
    requireOrSkip(ctx, missingFashionMnist);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-eval-'));
    const out = path.join(dir, 'run');
    writeFileSync(path.join(dir, 'run.yaml'), ['# a run config', 'epochs: 1', 'limit-train: 1200', 'val-split: 200', 'seed: 4', 'logger: [csv, jsonl, tensorboard]', 'early-stopping: 3', 'optimizer: sgd', 'lr: 0.05'].join('\n'));
    // Pinned to one backend: evaluate must reproduce train's accuracy exactly, and what `auto` picks
    // depends on the machine (tfjs-node, a GPU).
    const r = run('train', '--model', 'lenet5', '--config', path.join(dir, 'run.yaml'), '--checkpoint-every', '5', '--backend', 'wasm', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const summary = lastJson(r.stdout);
    expect(summary).toMatchObject({ epochs: 1, seed: 4, train_examples: 1000, val_examples: 200, lr: 0.05 });
    expect(readdirSync(path.join(out, 'checkpoints'))).toEqual(expect.arrayContaining(['best.ckpt', 'last.ckpt']));
    expect(readdirSync(out)).toEqual(expect.arrayContaining(['metrics.csv', 'metrics.jsonl', 'learning-curves.svg', 'tensorboard']));

    const e = run('evaluate', '--weights', path.join(out, 'checkpoints', 'last.ckpt'), '--dataset', 'fashion-mnist', '--backend', 'wasm');
    expect(e.status, e.stderr).toBe(0);
    expect(lastJson(e.stdout)).toMatchObject({ model: 'lenet5', epoch: 1, examples: 10000, test_accuracy: summary.test_accuracy });

    // Resume for one more epoch: the CSV continues with epoch 1.
    const r2 = run('train', '--model', 'lenet5', '--config', path.join(dir, 'run.yaml'), '--epochs', '2', '--resume', path.join(out, 'checkpoints', 'last.ckpt'), '--backend', 'wasm', '--out', out);
    expect(r2.status, r2.stderr).toBe(0);
    expect(r2.stderr).not.toMatch(/not released/);
    const csv = readFileSync(path.join(out, 'metrics.csv'), 'utf8').trim().split('\n');
    const header = csv[0].split(',');
    expect(csv.slice(1).map((l) => Number(l.split(',')[header.indexOf('epoch')]))).toEqual([0, 1]);
  }, 180_000);

  it('bad flags and config keys are usage errors naming them', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-eval-'));
    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ epochz: 3 }));
    const r = run('train', '--model', 'lenet5', '--config', path.join(dir, 'bad.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/epochz/);
    const l = run('train', '--model', 'lenet5', '--logger', 'csv,wandb');
    expect(l.status).toBe(2);
    expect(l.stderr).toMatch(/--logger/);
    const e = run('evaluate', '--dataset', 'fashion-mnist');
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(/--weights/);
    // Three CLI processes: seconds each on a loaded machine.
  }, 60_000);

  it('parses the flat YAML subset', () => {
    expect(parseFlatYaml('a: 1\nb: "x y" # note\nc: [csv, tensorboard]\nd:\n  - 1\n  - 2\ne: true\n')).toEqual({ a: '1', b: 'x y', c: ['csv', 'tensorboard'], d: ['1', '2'], e: true });
    expect(() => parseFlatYaml('just text')).toThrow(/line 1/);
  });
});
