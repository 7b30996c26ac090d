import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { Trainer, ashaRung, ashaShouldStop, asha, choice, crossValidate, gridPoints, gridSearch, inProcessExecutor, intUniform, logUniform, meanStd, memoryRungStore, percentile, randomSearch, uniform, type Executor } from '../src/index.js';
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
    expect(res.best?.metrics.val_loss).toBe(closest);
    const lines = res.table().split('\n');
    expect(lines[0]).toMatch(/rank.*trial.*status.*lr.*momentum.*batchSize.*width.*val_loss/);
    expect(lines).toHaveLength(14);
    // Same seed, same trials.
    const again = await randomSearch({ space, trials: 12, seed: 2, objective: async () => ({ val_loss: 0 }) });
    expect(again.trials.map((t) => t.params)).toEqual(res.trials.map((t) => t.params));
  });
});

describe('gridSearch', () => {
  it('tries every combination once, the last name fastest', async () => {
    expect(gridPoints({ a: [1, 2], b: ['x', 'y', 'z'] })).toEqual([
      { a: 1, b: 'x' }, { a: 1, b: 'y' }, { a: 1, b: 'z' },
      { a: 2, b: 'x' }, { a: 2, b: 'y' }, { a: 2, b: 'z' },
    ]);
    const seen: unknown[] = [];
    const r = await gridSearch({ grid: { a: [1, 2, 3], b: [10, 20] }, fixed: { c: 5 }, objective: async (p) => (seen.push(p), { val_loss: Math.abs(p.a * p.b - 40) }) });
    expect(seen).toHaveLength(6);
    expect(seen[0]).toEqual({ a: 1, b: 10, c: 5 });
    expect(r.best?.params).toEqual({ a: 2, b: 20 });
    expect(r.summary().completed).toBe(6);
    expect(() => gridPoints({ a: [] })).toThrow(/gridSearch.grid.a/);
    // A monitored metric no trial returns is an error naming the ones there are, even with one trial.
    await expect(gridSearch({ grid: { a: [1] }, objective: async () => ({ val_acc: 1 }) })).rejects.toThrow(/monitor[\s\S]*val_acc[\s\S]*val_loss/);
  });
});

describe('executors', () => {
  it('a failing trial is reported with its error and the study goes on', async () => {
    const r = await randomSearch({
      space: { x: uniform(0, 1) }, trials: 4, seed: 3,
      objective: async (p, trial) => {
        if (trial === 1) throw new Error('diverged');
        return { val_loss: p.x };
      },
    });
    expect(r.trials.map((t) => t.status)).toEqual(['completed', 'failed', 'completed', 'completed']);
    expect(r.trials[1].error).toBe('diverged');
    expect(r.summary()).toMatchObject({ completed: 3, failed: 1, pruned: 0 });
    // Failed trials rank last.
    expect(r.table().split('\n').at(-1)).toMatch(/\| 4 +\| 1 +\| failed/);
  });

  it('folds: one task per fold, the trial reports their mean', async () => {
    const calls: string[] = [];
    const r = await gridSearch({ grid: { w: [1, 2] }, folds: 3, objective: async (p, trial, ctx) => (calls.push(`${trial}/${ctx.fold}`), { val_loss: p.w + (ctx.fold ?? 0) }) });
    expect(calls).toEqual(['0/0', '0/1', '0/2', '1/0', '1/1', '1/2']);
    expect(r.trials[0].metrics.val_loss).toBe(2);
    expect(r.trials[1].folds?.map((f) => f.val_loss)).toEqual([2, 3, 4]);
  });

  it('crossValidate runs on any executor and fails naming the fold', async () => {
    const log: string[] = [];
    const base = inProcessExecutor();
    const spy: Executor = { name: 'spy', run: (tasks, fn, o) => (log.push(...tasks.map((t) => t.key)), base.run(tasks, fn, o)) };
    await wasmBackend().init();
    const r = await crossValidate(2, { dataset: syntheticDataset(20, 4), module: (f) => tinyModule(f), trainer: () => new Trainer({ maxEpochs: 1, numSanityValSteps: 0 }), batchSize: 10, executor: spy });
    expect(log).toEqual(['fold-0', 'fold-1']);
    expect(r.folds.map((f) => f.valExamples)).toEqual([10, 10]);
    await expect(crossValidate(2, { dataset: syntheticDataset(20, 4), module: () => { throw new Error('no model'); }, trainer: () => new Trainer({ maxEpochs: 1 }) })).rejects.toThrow(/trial fold-0 failed after 1 attempt: no model/);
  });
});

describe('ASHA', () => {
  it('rungs at grace · η^k epochs', () => {
    const c = asha({ gracePeriod: 1, reductionFactor: 2 });
    expect([1, 2, 3, 4, 5, 8].map((e) => ashaRung(c, e))).toEqual([0, 1, undefined, 2, undefined, 3]);
    expect([1, 2, 3, 9].map((e) => ashaRung(asha({ gracePeriod: 3 }), e))).toEqual([undefined, undefined, 0, 1]);
    // No rung at the last epoch: the trial is finished anyway.
    expect([1, 2, 4].map((e) => ashaRung(asha({ reductionFactor: 2, maxEpochs: 4 }), e))).toEqual([0, 1, undefined]);
  });

  it('percentile matches numpy (linear interpolation)', () => {
    // numpy.percentile([1, 2, 3, 4], 75) == 3.25; ([5, 1, 9], 50) == 5; ([2, 4], 66.666…) == 3.333…
    expect(percentile([1, 2, 3, 4], 75)).toBeCloseTo(3.25, 12);
    expect(percentile([5, 1, 9], 50)).toBe(5);
    expect(percentile([2, 4], (2 / 3) * 100)).toBeCloseTo(10 / 3, 12);
  });

  it('keeps the top 1/η of the trials that reached a rung before', () => {
    const min = asha({ metric: 'val_loss', reductionFactor: 2 });
    expect(ashaShouldStop(min, 5, [])).toBe(false);
    // Losses 1, 3 before: the median reward is −2; a loss of 2.5 is worse, 1.5 is better.
    expect(ashaShouldStop(min, 2.5, [1, 3])).toBe(true);
    expect(ashaShouldStop(min, 1.5, [1, 3])).toBe(false);
    expect(ashaShouldStop(asha({ metric: 'val_acc', reductionFactor: 2 }), 0.6, [0.5, 0.9])).toBe(true);
    expect(ashaShouldStop(min, NaN, [1])).toBe(true);
  });

  it('a rung store answers a retried trial as it answered the first time', async () => {
    const s = memoryRungStore();
    expect(await s.record(0, 'a', 1)).toEqual([]);
    expect(await s.record(0, 'b', 2)).toEqual([1]);
    expect(await s.record(0, 'a', 7)).toEqual([]);
    expect(await s.record(0, 'b', 2)).toEqual([1]);
  });

  it('stops poor trials at the epoch boundary and marks them pruned', async () => {
    const epochsRun: number[] = [];
    // Trial quality is its index: 0 best. Each "epoch" reports loss = quality / epoch.
    const r = await gridSearch({
      grid: { q: [0, 3, 1, 4, 2, 5] },
      pruner: asha({ gracePeriod: 1, reductionFactor: 2 }),
      objective: async (p, _t, ctx) => {
        let e = 1;
        for (; e <= 4; e++) if (await ctx.report(e, { val_loss: p.q / e })) break;
        epochsRun.push(Math.min(e, 4));
        return { val_loss: p.q / Math.min(e, 4) };
      },
    });
    // Rungs at epochs 1, 2, 4; each trial is compared with those that reached the rung before it.
    // q=3: worse than q=0 at rung 0. q=1: beats the median of {0, 3} at rung 0, loses to q=0 at
    // rung 1. q=4: below the median of {0, 3, 1}. q=2: ties the median of {0, 3, 1, 4} (goes on),
    // then loses to {0, 0.5} at rung 1. q=5: stops at rung 0.
    expect(r.trials.map((t) => t.status)).toEqual(['completed', 'pruned', 'pruned', 'pruned', 'pruned', 'pruned']);
    expect(epochsRun).toEqual([4, 1, 2, 1, 2, 1]);
    expect(r.table()).toMatch(/pruned/);
    expect(r.best?.params.q).toBe(0);
  });
});
