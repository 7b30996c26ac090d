import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { BackboneFinetuning, GradientAccumulationScheduler, ModelCheckpoint, ModelSummary, StochasticWeightAveraging, Trainer, type Callback } from '../src/index.js';
import { loaders, maxAbsDiff, tinyModule, weights } from './helpers.js';

async function fit(maxEpochs: number, callbacks: Callback[], module = tinyModule(), ckptPath?: string) {
  const trainer = new Trainer({ maxEpochs, numSanityValSteps: 0, seed: 1 }, callbacks);
  const { train, val } = loaders(64, 32, 16);
  await trainer.fit(module, train, val, ckptPath);
  return { trainer, module };
}

describe('fine-tuning and averaging callbacks', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('GradientAccumulationScheduler changes batches per optimizer step by epoch', async () => {
    const gas = new GradientAccumulationScheduler({ scheduling: { 1: 2, 2: 4 } });
    expect([0, 1, 2, 5].map((e) => gas.factorAt(e))).toEqual([1, 2, 4, 4]);
    const steps: number[] = [];
    const rec: Callback = { onTrainEpochEnd: (t) => void steps.push(t.globalStep) };
    const { trainer } = await fit(3, [gas, rec]);
    // 4 batches per epoch: 4 steps, then 2, then 1.
    expect(steps).toEqual([4, 6, 7]);
    trainer.optimizerConfig!.optimizer.dispose();
  });

  it('BackboneFinetuning freezes the backbone, then trains it at a lower rate from epoch N', async () => {
    const module = tinyModule();
    const backboneAt: Record<number, Float32Array> = {};
    const rec: Callback = { onTrainEpochEnd: (t, m) => void (backboneAt[t.currentEpoch] = (m.model.stateDict()['1.weight'].dataSync() as Float32Array).slice()) };
    const initial = (module.model.stateDict()['1.weight'].dataSync() as Float32Array).slice();
    const bf = new BackboneFinetuning({ backbone: (m) => m.getModule('1'), unfreezeAtEpoch: 2, backboneLrFactor: 0.1 });
    const { trainer } = await fit(3, [bf, rec], module);
    expect(maxAbsDiff({ w: backboneAt[0] }, { w: initial })).toBe(0);
    expect(maxAbsDiff({ w: backboneAt[1] }, { w: initial })).toBe(0);
    expect(maxAbsDiff({ w: backboneAt[2] }, { w: initial })).toBeGreaterThan(0);
    const opt = trainer.optimizerConfig!.optimizer;
    expect(opt.paramGroups.map((g) => g.name)).toEqual(['group0', 'backbone']);
    expect(opt.getLr(1)).toBeCloseTo(opt.getLr(0) * 0.1, 12);
    opt.dispose();
  });

  it('BackboneFinetuning resumes past the unfreeze epoch (the extra parameter group comes back)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bf-'));
    const mk = () => new BackboneFinetuning({ backbone: '1', unfreezeAtEpoch: 1 });
    const full = await fit(3, [mk()]);
    full.trainer.optimizerConfig!.optimizer.dispose();
    const first = await fit(2, [mk(), new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 })]);
    first.trainer.optimizerConfig!.optimizer.dispose();
    const resumed = await fit(3, [mk()], tinyModule(9), path.join(dir, 'last.ckpt'));
    expect(resumed.trainer.optimizerConfig!.optimizer.paramGroups).toHaveLength(2);
    expect(maxAbsDiff(weights(full.module), weights(resumed.module))).toBeLessThanOrEqual(1e-6);
    resumed.trainer.optimizerConfig!.optimizer.dispose();
  });

  it('StochasticWeightAveraging leaves the mean of the epoch-end weights in the model', async () => {
    const module = tinyModule();
    const ends: Record<string, Float32Array>[] = [];
    // Registered before SWA so it sees each epoch's weights before they are averaged.
    const rec: Callback = { onTrainEpochEnd: (_t, m) => void ends.push(weights(m as never)) };
    const swa = new StochasticWeightAveraging({ swaEpochStart: 1 });
    const before = tf.memory().numTensors;
    const { trainer } = await fit(4, [rec, swa], module);
    expect(swa.averaged).toBe(3);
    const got = weights(module);
    for (const k of Object.keys(got)) {
      const mean = got[k].map((_, i) => (ends[1][k][i] + ends[2][k][i] + ends[3][k][i]) / 3);
      expect(maxAbsDiff({ k: got[k] }, { k: mean })).toBeLessThan(1e-6);
    }
    trainer.optimizerConfig!.optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // Its state is the running mean, read back at the epoch's end (asynchronously).
    const state = swa.stateDict() as { count: number; average: Record<string, { shape: number[]; data: number[] }> };
    expect(state.count).toBe(3);
    const keys = Object.keys(got).filter((k) => state.average[k]);
    expect(keys.length).toBe(Object.keys(got).length);
    for (const k of keys) expect(maxAbsDiff({ k: got[k] }, { k: Float32Array.from(state.average[k].data) })).toBeLessThan(1e-6);
    // It round-trips through JSON.
    const again = new StochasticWeightAveraging();
    again.loadStateDict(JSON.parse(JSON.stringify({ count: 1, average: { a: { shape: [2], data: [1, 2] } } })));
    expect(again.averaged).toBe(1);
    expect(again.stateDict()).toEqual({ count: 1, average: { a: { shape: [2], data: [1, 2] } } });
    again.teardown();
  });

  it('ModelSummary lists the modules with their parameter counts', async () => {
    const lines: string[] = [];
    const ms = new ModelSummary({ write: (l) => void lines.push(l) });
    const { trainer } = await fit(1, [ms]);
    expect(ms.rows).toEqual([
      { name: '1', type: 'Linear', params: 8 * 16 + 16, trainable: 8 * 16 + 16 },
      { name: '4', type: 'Linear', params: 16 * 3 + 3, trainable: 16 * 3 + 3 },
    ]);
    expect(lines[lines.length - 1]).toBe('195 trainable, 0 frozen, 195 total parameters');
    trainer.optimizerConfig!.optimizer.dispose();
  });
});
