import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { Trainer, choice, crossValidate, intUniform, logUniform, meanStd, randomSearch, uniform } from '../src/index.js';
import { syntheticDataset, tinyModule } from './helpers.js';

describe('summary statistics', () => {
  it('mean and sample std', () => {
    const { mean, std } = meanStd([{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
    expect(mean.a).toBe(2.5);
    expect(std.a).toBeCloseTo(Math.sqrt(5 / 3), 12);
  });
});

describe('crossValidate', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('trains k models and reports per-fold and mean ± std held-out metrics', async () => {
    const before = tf.memory().numTensors;
    const r = await crossValidate(3, { dataset: syntheticDataset(60, 4), module: (f) => tinyModule(f), trainer: () => new Trainer({ maxEpochs: 2, numSanityValSteps: 0 }), batchSize: 10 });
    expect(r.folds.map((f) => f.valExamples)).toEqual([20, 20, 20]);
    const accs = r.folds.map((f) => f.metrics.val_acc);
    expect(r.mean.val_acc).toBeCloseTo(accs.reduce((a, b) => a + b) / 3, 12);
    expect(r.table()).toMatch(/mean ± std/);
    expect(r.table().split('\n')).toHaveLength(2 + 3 + 1);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('randomSearch', () => {
  it('samples log and linear scales within bounds', () => {
    const r = new Rng(1);
    const lr = logUniform(1e-4, 1e-1);
    const xs = Array.from({ length: 4000 }, () => lr.sample(r));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1e-4);
    expect(Math.max(...xs)).toBeLessThanOrEqual(1e-1);
    // Log-uniform: each of the three decades gets about a third of the draws.
    const below1e3 = xs.filter((x) => x < 1e-3).length / xs.length;
    expect(below1e3).toBeGreaterThan(0.3);
    expect(below1e3).toBeLessThan(0.37);
    const w = intUniform(8, 64);
    const ws = Array.from({ length: 2000 }, () => w.sample(r));
    expect(ws.every((v) => Number.isInteger(v) && v >= 8 && v <= 64)).toBe(true);
    expect(new Set(ws).size).toBe(57);
    const m = uniform(0.5, 0.99);
    expect(Array.from({ length: 100 }, () => m.sample(r)).every((v) => v >= 0.5 && v <= 0.99)).toBe(true);
  });

  it('runs the objective per trial, ranks by the monitored metric and prints a table', async () => {
    const space = { lr: logUniform(1e-4, 1), momentum: uniform(0, 0.9), batchSize: choice([16, 32, 64]), width: intUniform(4, 32, { log: true }) };
    // A known optimum at lr = 0.01: the best trial is the one sampled closest to it on a log scale.
    const res = await randomSearch({ space, trials: 12, seed: 2, monitor: 'val_loss', objective: async (p) => ({ val_loss: Math.abs(Math.log10(p.lr) + 2), val_acc: 1 }) });
    const closest = Math.min(...res.trials.map((t) => Math.abs(Math.log10(t.params.lr) + 2)));
    expect(res.best.metrics.val_loss).toBe(closest);
    const lines = res.table().split('\n');
    expect(lines[0]).toMatch(/rank.*trial.*lr.*momentum.*batchSize.*width.*val_loss/);
    expect(lines).toHaveLength(14);
    // Same seed, same trials.
    const again = await randomSearch({ space, trials: 12, seed: 2, objective: async () => ({ val_loss: 0 }) });
    expect(again.trials.map((t) => t.params)).toEqual(res.trials.map((t) => t.params));
  });
});
