import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, manualSeed } from '@kiln/core';
import { BatchNorm1d, Flatten, Linear, ReLU, Sequential } from '@kiln/layers';
import { Adam, SGD } from '@kiln/optim';
import { wasmBackend } from '@kiln/backend-cpu';
import { BackboneFinetuning, ClassificationModule, GradientAccumulationScheduler, ModelCheckpoint, ModelSummary, StochasticWeightAveraging, Trainer, type Callback } from '../src/index.js';
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
    const bf = new BackboneFinetuning({ backbone: (m) => m.getModule('1'), unfreezeAtEpoch: 2, backboneInitialRatioLr: 0.1 });
    const { trainer } = await fit(3, [bf, rec], module);
    expect(maxAbsDiff({ w: backboneAt[0] }, { w: initial })).toBe(0);
    expect(maxAbsDiff({ w: backboneAt[1] }, { w: initial })).toBe(0);
    expect(maxAbsDiff({ w: backboneAt[2] }, { w: initial })).toBeGreaterThan(0);
    const opt = trainer.optimizerConfig!.optimizer;
    expect(opt.paramGroups.map((g) => g.name)).toEqual(['group0', 'backbone']);
    expect(opt.getLr(1)).toBeCloseTo(opt.getLr(0) * 0.1, 12);
    opt.dispose();
  });

  it('BackboneFinetuning ramps the backbone rate by lambdaFunc(epoch + 1) per epoch, capped at the head rate (shouldAlign)', async () => {
    const lrsOf = async (options: ConstructorParameters<typeof BackboneFinetuning>[0]) => {
      const lrs: number[] = [];
      const rec: Callback = { onTrainEpochStart: (t) => void lrs.push(t.optimizerConfig!.optimizer.paramGroups.length > 1 ? t.optimizerConfig!.optimizer.getLr(1) : 0) };
      const { trainer } = await fit(6, [new BackboneFinetuning({ backbone: '1', unfreezeAtEpoch: 1, ...options }), rec]);
      trainer.optimizerConfig!.optimizer.dispose();
      return lrs;
    };
    // Head at 0.01 (tinyModule's Adam): 0.001 at epoch 1, doubled each epoch, never above 0.01.
    const expected = [0, 0.001, 0.002, 0.004, 0.008, 0.01];
    (await lrsOf({})).forEach((lr, i) => expect(lr).toBeCloseTo(expected[i], 12));
    const free = [0, 0.001, 0.002, 0.004, 0.008, 0.016];
    (await lrsOf({ shouldAlign: false })).forEach((lr, i) => expect(lr).toBeCloseTo(free[i], 12));
    const seen: number[] = [];
    const custom = await lrsOf({ backboneInitialLr: 0.004, lambdaFunc: (e) => (seen.push(e), 0.5) });
    [0, 0.004, 0.002, 0.001, 0.0005, 0.00025].forEach((lr, i) => expect(custom[i]).toBeCloseTo(lr, 12));
    expect(seen).toEqual([3, 4, 5, 6]);
  });

  // The step a weight takes must be exactly one SGD step at its group's rate: w1 = w0 − lr·g.
  it.each([
    ['over the trainable parameters: the backbone gets its own group at 0.1 × 0.1', 'trainable', 0.01],
    ['over every parameter: the backbone stays in the first group at 0.1, updated once', 'all', 0.1],
  ] as const)('BackboneFinetuning with an optimizer built %s', async (_what, built, lr) => {
    manualSeed(3);
    const model = new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 16 }), new ReLU(), new Linear({ inFeatures: 16, outFeatures: 3 }));
    const module = new ClassificationModule(model, {
      optimizer: (m) => new SGD(built === 'all' ? m.parameters().map((p) => p.variable) : m.trainableVariables(), { lr: 0.1 }),
    });
    const w = model.getModule('1').param('weight').variable;
    let before: Float32Array | undefined;
    let grad: Float32Array | undefined;
    let after: Float32Array | undefined;
    const probe: Callback = {
      onBeforeOptimizerStep: (t, _m, grads) => {
        if (t.currentEpoch !== 1 || before) return;
        before = (w.dataSync() as Float32Array).slice();
        grad = (grads[w.name].dataSync() as Float32Array).slice();
      },
      onTrainBatchEnd: (t) => {
        if (t.currentEpoch === 1 && !after) after = (w.dataSync() as Float32Array).slice();
      },
    };
    const messages: string[] = [];
    const bf = new BackboneFinetuning({ backbone: '1', unfreezeAtEpoch: 1, log: (msg) => void messages.push(msg) });
    const { trainer } = await fit(2, [bf, probe], module);
    const opt = trainer.optimizerConfig!.optimizer;
    expect(opt.paramGroups.length).toBe(built === 'all' ? 1 : 2);
    const everyParam = opt.paramGroups.flatMap((g) => g.params);
    expect(new Set(everyParam).size).toBe(everyParam.length);
    expect(messages.length).toBe(built === 'all' ? 1 : 0);
    if (built === 'all') expect(messages[0]).toMatch(/already in the optimizer/);
    expect(grad!.some((g) => g !== 0)).toBe(true);
    let worst = 0;
    for (let i = 0; i < before!.length; i++) worst = Math.max(worst, Math.abs(after![i] - (before![i] - lr * grad![i])));
    expect(worst).toBeLessThan(1e-7);
    opt.dispose();
  });

  it('BackboneFinetuning with trainBn: false keeps the backbone batch norm frozen (statistics too) until it unfreezes', async () => {
    const withBn = (trainBn: boolean) => {
      manualSeed(5);
      const model = new Sequential(new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 16 }), new BatchNorm1d(16), new ReLU()), new Linear({ inFeatures: 16, outFeatures: 3 }));
      return { model, bf: new BackboneFinetuning({ backbone: '0', unfreezeAtEpoch: 1, trainBn }) };
    };
    for (const trainBn of [false, true]) {
      const { model, bf } = withBn(trainBn);
      const module = new ClassificationModule(model, { optimizer: (m) => new Adam(m.trainableVariables(), { lr: 0.01 }) });
      const mean = () => (model.getModule('0.2').buffer('running_mean').dataSync() as Float32Array).slice();
      const initial = mean();
      const at: Float32Array[] = [];
      const rec: Callback = { onTrainEpochEnd: () => void at.push(mean()) };
      const { trainer } = await fit(2, [bf, rec], module);
      // Frozen phase: the statistics follow the data only with trainBn.
      if (trainBn) expect(maxAbsDiff({ m: at[0] }, { m: initial })).toBeGreaterThan(0);
      else expect(at[0]).toEqual(initial);
      expect(maxAbsDiff({ m: at[1] }, { m: initial }), `trainBn ${trainBn}, epoch 1`).toBeGreaterThan(0);
      const groups = trainer.optimizerConfig!.optimizer.paramGroups.map((g) => g.params.length);
      // Linear weight + bias join at epoch 1; with trainBn: false, so do the batch norm's scale and shift.
      expect(groups).toEqual(trainBn ? [4, 2] : [2, 4]);
      trainer.optimizerConfig!.optimizer.dispose();
    }
  });

  it('BackboneFinetuning leaves out a zoo-style model’s head when no backbone is given, and asks for one otherwise', async () => {
    const module = tinyModule();
    (module.model as unknown as { headPath: string }).headPath = '4';
    const { trainer } = await fit(1, [new BackboneFinetuning({ unfreezeAtEpoch: 5 })], module);
    expect(module.model.getModule('1').parameters().every((p) => !p.trainable)).toBe(true);
    expect(module.model.getModule('4').parameters().every((p) => p.trainable)).toBe(true);
    trainer.optimizerConfig!.optimizer.dispose();
    await expect(fit(1, [new BackboneFinetuning()])).rejects.toThrow(/backbone/);
    expect(() => new BackboneFinetuning({ backboneInitialRatioLr: 0 })).toThrow(ConfigError);
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

  it('BackboneFinetuning resumed in the middle of a ramping epoch equals an uninterrupted run (rates and weights)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bf-mid-'));
    const mk = () => new BackboneFinetuning({ backbone: '1', unfreezeAtEpoch: 1 });
    const lrs = (t: Trainer) => t.optimizerConfig!.optimizer.paramGroups.map((g) => g.hyper.lr);
    const full = await fit(4, [mk()]);
    const crash: Callback = {
      onTrainBatchEnd: (t) => {
        if (t.globalStep === 11) throw new Error('simulated crash');
      },
    };
    // 4 batches per epoch: the last checkpoint is at step 10, in the middle of epoch 2 (after its ramp step).
    await expect(fit(4, [mk(), new ModelCheckpoint({ dirpath: dir, everyNSteps: 2, saveLast: true, saveTopK: 0 }), crash])).rejects.toThrow(/simulated crash/);
    const resumed = await fit(4, [mk()], tinyModule(9), path.join(dir, 'last.ckpt'));
    expect(lrs(resumed.trainer)).toEqual(lrs(full.trainer));
    expect(lrs(full.trainer)[1]).toBeCloseTo(0.004, 12);
    expect(maxAbsDiff(weights(full.module), weights(resumed.module))).toBeLessThanOrEqual(1e-6);
    full.trainer.optimizerConfig!.optimizer.dispose();
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
    const row = (path: string, params: number) => ({ path, type: 'Linear', outputShape: null, params, trainableParams: params, multiplyAdds: 0 });
    expect(ms.rows).toEqual([row('1', 8 * 16 + 16), row('4', 16 * 3 + 3)]);
    expect(lines[lines.length - 1]).toBe('195 trainable, 0 frozen, 195 total parameters');
    trainer.optimizerConfig!.optimizer.dispose();
    // With an input shape: every layer with its output shape, as `kiln summary` prints it.
    const full: string[] = [];
    const withShapes = new ModelSummary({ inputShape: [1, 1, 8], write: (l) => void full.push(l) });
    const again = await fit(1, [withShapes]);
    expect(withShapes.rows.find((r) => r.path === '4')).toMatchObject({ outputShape: [1, 3], multiplyAdds: 16 * 3 });
    expect(full.join('\n')).toContain('output shape');
    again.trainer.optimizerConfig!.optimizer.dispose();
  });
});
