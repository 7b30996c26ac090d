import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import type { Batch } from '@kiln/data';
import { NonFiniteError, TerminateOnNaN, Trainer, type Callback } from '../src/index.js';
import { loaders, tinyModule, weights } from './helpers.js';

/** A module whose third training step returns a NaN loss (so every gradient of that step is NaN). */
function poisonedModule(atCall = 2) {
  const module = tinyModule();
  const step = module.trainingStep.bind(module);
  let calls = 0;
  module.trainingStep = (b: Batch) => {
    const o = step(b);
    if (calls++ === atCall) {
      o.logs.loss = tf.mul(o.loss!, NaN) as tf.Scalar;
      o.loss = o.logs.loss;
    }
    return o;
  };
  return module;
}

async function fit(callbacks: Callback[], module = poisonedModule()) {
  const trainer = new Trainer({ numSanityValSteps: 0, maxEpochs: 2, seed: 0 }, callbacks);
  const { train, val } = loaders(64, 32, 16);
  let error: unknown;
  const before: Record<string, Float32Array>[] = [];
  const spy: Callback = { onTrainBatchStart: (_t, m) => void before.push(weights(m as never)) };
  try {
    await trainer.fit(module, train, val);
  } catch (e) {
    error = e;
  }
  trainer.optimizerConfig?.optimizer.dispose();
  return { trainer, module, error, before, spy };
}

describe('TerminateOnNaN with gradient checks', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('stops before a non-finite gradient reaches the weights and names the parameter and learning rate', async () => {
    const t = new TerminateOnNaN({ checkGradients: true, raise: true });
    const { trainer, module, error } = await fit([t]);
    expect(error).toBeInstanceOf(NonFiniteError);
    const e = error as NonFiniteError;
    expect(e.step).toBe(2);
    expect(e.parameter).toBe('1.weight');
    expect(e.lr).toBeCloseTo(0.01);
    expect(e.message).toMatch(/step 2[\s\S]*'1\.weight'[\s\S]*learning rate 0\.01/);
    expect(trainer.globalStep).toBe(2);
    for (const w of Object.values(weights(module))) expect(w.every(Number.isFinite)).toBe(true);
    module.model.dispose();
  });

  it("quietly stops without raise, weights still finite; 'skip' drops the update and trains on", async () => {
    const stop = new TerminateOnNaN({ checkGradients: true });
    const a = await fit([stop]);
    expect(a.error).toBeUndefined();
    expect(stop.stoppedAtStep).toBe(2);
    expect(stop.error?.parameter).toBe('1.weight');
    for (const w of Object.values(weights(a.module))) expect(w.every(Number.isFinite)).toBe(true);
    a.module.model.dispose();

    const skip = new TerminateOnNaN({ checkGradients: true, onNonFinite: 'skip' });
    const rows: Record<string, number>[] = [];
    const epochEnds: Callback = { onTrainEpochEnd: (t) => void rows.push({ ...t.callbackMetrics }) };
    const b = await fit([skip, epochEnds]);
    expect(b.error).toBeUndefined();
    expect(skip.skippedSteps).toBe(1);
    // 2 epochs × 4 batches, one update dropped.
    expect(b.trainer.globalStep).toBe(7);
    // The dropped batch's NaN loss stays out of the epoch means (epoch 1 held it).
    expect(rows.length).toBe(2);
    for (const r of rows) expect(Number.isFinite(r.train_loss)).toBe(true);
    for (const w of Object.values(weights(b.module))) expect(w.every(Number.isFinite)).toBe(true);
    b.module.model.dispose();
  });

  it('leaks no tensors per step', async () => {
    const t = new TerminateOnNaN({ checkGradients: true });
    await fit([t], tinyModule());
    const n0 = tf.memory().numTensors;
    const again = await fit([t], tinyModule());
    again.module.model.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(n0);
  });
});
