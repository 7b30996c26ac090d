import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, DataFormatError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { BatchNorm1d, Linear, Sequential } from '@kiln/layers';
import { EMA, ModelCheckpoint, Trainer, checkpointTensors, emaDecay, readCheckpoint, type Callback, type TrainingModule } from '../src/index.js';
import { loaders, maxAbsDiff, tinyModule, weights } from './helpers.js';

/** A model with parameters and batch-norm buffers, driven through the hooks by hand. */
function handModule(): TrainingModule {
  return { model: new Sequential(new Linear({ inFeatures: 3, outFeatures: 2 }), new BatchNorm1d(2)) } as unknown as TrainingModule;
}

/** Sets every parameter and buffer of the model to `f(name, index)`. */
function setAll(m: TrainingModule, f: (name: string, i: number) => number): void {
  for (const [k, v] of Object.entries(m.model.stateDict())) (v as tf.Variable).assign(tf.tensor(Array.from({ length: v.size }, (_, i) => (v.dtype === 'int32' ? Math.round(f(k, i)) : f(k, i))), v.shape, v.dtype));
}

const paramNames = (m: TrainingModule) => new Set(m.model.namedParameters().map(([n]) => n));

describe('EMA', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('matches the closed form of the average after a few steps; buffers are copied, not averaged', () => {
    for (const warmup of [false, true]) {
      const m = handModule();
      const ema = new EMA({ decay: 0.8, warmup });
      const trainer = { globalStep: 0 } as { globalStep: number };
      // w_t = value of weight i at step t; step 0 is the starting point.
      const w = (t: number, i: number) => Math.sin(1 + 3 * t + i) * (t + 1);
      setAll(m, (_, i) => w(0, i));
      ema.onFitStart(trainer as never, m);
      const K = 4;
      for (let t = 1; t <= K; t++) {
        setAll(m, (_, i) => w(t, i));
        trainer.globalStep = t;
        ema.onTrainBatchEnd(trainer as never, m);
      }
      expect(ema.numUpdates).toBe(K);
      // Closed form: ema_K = (∏_{n<K} d_n) w_0 + Σ_{t=1..K} (1 − d_{t−1}) (∏_{t≤n<K} d_n) w_t.
      const d = Array.from({ length: K }, (_, n) => (warmup ? Math.min(0.8, (1 + n) / (10 + n)) : 0.8));
      const prod = (from: number) => d.slice(from).reduce((p, x) => p * x, 1);
      const closed = (i: number) => prod(0) * w(0, i) + Array.from({ length: K }, (_, k) => (1 - d[k]) * prod(k + 1) * w(k + 1, i)).reduce((a, b) => a + b, 0);
      const params = paramNames(m);
      const avg = ema.averagedWeights!;
      const model = m.model.stateDict();
      for (const [k, v] of Object.entries(avg)) {
        const got = v.dataSync();
        // Parameters follow the closed form; buffers are the model's latest values exactly.
        if (params.has(k)) for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(closed(i), 5);
        else expect(Array.from(got)).toEqual(Array.from(model[k].dataSync()));
      }
      expect(Object.keys(avg).some((k) => !params.has(k))).toBe(true); // there were buffers to check
      ema.dispose();
      m.model.dispose();
    }
  });

  it('the warm-up schedule is (1 + n)/(10 + n) capped at decay', () => {
    expect(emaDecay(0.999, 0, true)).toBeCloseTo(0.1, 12);
    expect(emaDecay(0.999, 10, true)).toBeCloseTo(11 / 20, 12);
    expect(emaDecay(0.5, 100, true)).toBe(0.5);
    expect(emaDecay(0.9, 0, false)).toBe(0.9);
  });

  it('updates only after an optimizer step (not inside an accumulation window) and every N steps', () => {
    const m = handModule();
    const ema = new EMA({ decay: 0.5, everyNSteps: 2 });
    const trainer = { globalStep: 0 };
    ema.onFitStart(trainer as never, m);
    for (const step of [0, 1, 1, 2, 2, 3, 4]) {
      trainer.globalStep = step;
      ema.onTrainBatchEnd(trainer as never, m);
    }
    expect(ema.numUpdates).toBe(2); // steps 2 and 4
    ema.dispose();
    m.model.dispose();
  });

  it('bad options are ConfigErrors', () => {
    expect(() => new EMA({ decay: 1 })).toThrow(ConfigError);
    expect(() => new EMA({ decay: -0.1 })).toThrow(ConfigError);
    expect(() => new EMA({ everyNSteps: 0 })).toThrow(ConfigError);
  });

  async function fit(callbacks: Callback[], maxEpochs = 3, ckptPath?: string) {
    const module = tinyModule(0);
    const { train, val } = loaders(80, 32, 16);
    const trainer = new Trainer({ maxEpochs, seed: 5, numSanityValSteps: 1 }, callbacks);
    await trainer.fit(module, train, val, ckptPath);
    return { module, trainer, val };
  }

  function free(r: { module: TrainingModule; trainer: Trainer }): void {
    r.trainer.optimizerConfig!.optimizer.dispose();
    r.module.model.dispose();
  }

  it('validates with the average while training continues from the raw weights', async () => {
    const plain = await fit([]);
    const ema = new EMA({ decay: 0.9, applyAtEnd: false });
    const withEma = await fit([ema]);
    // Same raw trajectory: the swap for validation never leaks into training.
    expect(maxAbsDiff(weights(plain.module), weights(withEma.module))).toBe(0);
    // Validation saw other weights than the raw ones…
    expect(withEma.trainer.callbackMetrics.val_loss).not.toBeCloseTo(plain.trainer.callbackMetrics.val_loss, 6);
    // …the average: validating again with the average (no update since the last validation) gives the same loss,
    // and leaves the raw weights in place.
    const raw = weights(withEma.module);
    const again = await withEma.trainer.validate(withEma.module, withEma.val);
    expect(again.val_loss).toBeCloseTo(withEma.trainer.callbackMetrics.val_loss, 6);
    expect(maxAbsDiff(raw, weights(withEma.module))).toBe(0);
    ema.dispose();
    free(plain);
    free(withEma);
  });

  it('applyAtEnd leaves the average in the model; no tensor leaks over a fit', async () => {
    const before = tf.memory().numTensors;
    const ema = new EMA({ decay: 0.9 });
    const r = await fit([ema]);
    const avg = Object.fromEntries(Object.entries(ema.averagedWeights!).map(([k, v]) => [k, v.dataSync() as Float32Array]));
    expect(maxAbsDiff(avg, weights(r.module))).toBe(0);
    ema.dispose();
    free(r);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a run resumed from a checkpoint ends equal to an uninterrupted one (the average travels in the checkpoint)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-ema-'));
    const full = new EMA({ decay: 0.9, warmup: true });
    const a = await fit([full, new ModelCheckpoint({ dirpath: dir, filename: 'e{epoch}', saveTopK: -1 })], 3);
    const wFull = weights(a.module);
    const updates = full.numUpdates;
    // The checkpoint carries the average (parameters and buffers) under the callback's key.
    const ck = readCheckpoint(path.join(dir, 'e0.ckpt'));
    expect(Object.keys(ck.callbackTensors[full.stateKey]).sort()).toEqual(Object.keys(a.module.model.stateDict()).sort());
    // …and loadAverageInto puts it into a model; a checkpoint without it is a DataFormatError naming what it has.
    const avgCk = Object.fromEntries(Object.entries(ck.callbackTensors[full.stateKey]).map(([k, v]) => [k, v.dataSync() as Float32Array]));
    tf.dispose(checkpointTensors(ck));
    const probe = tinyModule(3);
    full.loadAverageInto(path.join(dir, 'e0.ckpt'), probe.model);
    expect(maxAbsDiff(avgCk, weights(probe))).toBe(0);
    expect(() => new EMA({ decay: 0.5 }).loadAverageInto(path.join(dir, 'e0.ckpt'), probe.model)).toThrow(DataFormatError);
    expect(() => new EMA({ decay: 0.5 }).loadAverageInto(path.join(dir, 'e0.ckpt'), probe.model)).toThrow(/EMA\{decay=0.9\}/);
    probe.model.dispose();
    full.dispose();
    free(a);

    const resumedEma = new EMA({ decay: 0.9, warmup: true });
    const b = await fit([resumedEma], 3, path.join(dir, 'e0.ckpt'));
    expect(resumedEma.numUpdates).toBe(updates);
    expect(maxAbsDiff(wFull, weights(b.module))).toBeLessThanOrEqual(1e-7);
    resumedEma.dispose();
    free(b);

    // Without the average in the checkpoint the resumed run starts a new average, and ends elsewhere.
    const fresh = new EMA({ decay: 0.9, warmup: true, saveInCheckpoint: false });
    const c = await fit([fresh], 3, path.join(dir, 'e0.ckpt'));
    expect(maxAbsDiff(wFull, weights(c.module))).toBeGreaterThan(1e-4);
    fresh.dispose();
    free(c);
  });
});
