import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, DataFormatError, decodeSafetensors } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { readFileSync } from 'node:fs';
import { CHECKPOINT_FORMAT, EarlyStopping, ModelCheckpoint, Trainer, loadCheckpoint, readCheckpoint, type Callback } from '../src/index.js';
import { loaders, maxAbsDiff, tinyModule, weights } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-ckpt-'));

/** A callback with state of its own, to see it survive a resume. */
class Counter implements Callback {
  readonly stateKey = 'Counter';
  epochs = 0;
  onTrainEpochEnd(): void {
    this.epochs++;
  }
  stateDict() {
    return { epochs: this.epochs };
  }
  loadStateDict(s: Record<string, unknown>) {
    this.epochs = Number(s.epochs);
  }
}

async function run(maxEpochs: number, callbacks: Callback[], ckptPath?: string, seedOfFreshModel = 0, extra: ConstructorParameters<typeof Trainer>[0] = {}) {
  const module = tinyModule(seedOfFreshModel);
  const { train, val } = loaders(80, 32, 16);
  const trainer = new Trainer({ maxEpochs, seed: 5, numSanityValSteps: 1, ...extra }, callbacks);
  await trainer.fit(module, train, val, ckptPath);
  const w = weights(module);
  trainer.optimizerConfig!.optimizer.dispose();
  module.model.dispose();
  return { w, metrics: trainer.callbackMetrics, trainer };
}

describe('checkpoints', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('one safetensors file with model and optimizer tensors and JSON metadata', async () => {
    const dir = tmp();
    const counter = new Counter();
    await run(2, [counter, new ModelCheckpoint({ dirpath: dir, saveLast: true, monitor: 'val_loss', saveTopK: 1 })]);
    const files = readdirSync(dir).sort();
    expect(files).toContain('last.ckpt');
    expect(files).toContain('best.ckpt');
    expect(files.filter((f) => f.startsWith('epoch='))).toHaveLength(1);
    expect(files.some((f) => f.includes('.tmp-'))).toBe(false);
    const raw = decodeSafetensors(readFileSync(path.join(dir, 'last.ckpt')));
    const names = Object.keys(raw.tensors);
    expect(names).toEqual(expect.arrayContaining(['model.1.weight', 'model.1.bias', 'model.4.weight', 'model.4.bias']));
    // Adam's two moments for each of the four parameters (plus whatever other slots it keeps).
    const slots = names.filter((n) => n.startsWith('optimizer.'));
    for (let i = 0; i < 4; i++) expect(slots).toEqual(expect.arrayContaining([`optimizer.${i}.exp_avg`, `optimizer.${i}.exp_avg_sq`]));
    expect(slots.every((n) => /^optimizer\.[0-3]\.\w+$/.test(n))).toBe(true);
    const ck = readCheckpoint(path.join(dir, 'last.ckpt'));
    expect(ck.meta).toMatchObject({ format: CHECKPOINT_FORMAT, epoch: 2, batch: 0, globalStep: 10, model: { class: 'Sequential' } });
    expect(ck.meta.callbacks.Counter).toEqual({ epochs: 2 });
    expect(ck.meta.rng).toHaveProperty('s');
    expect(ck.meta.loader).toMatchObject({ state: { epoch: 2, position: 0 }, replay: false });
    expect(ck.meta.versions.tfjs).toBe(tf.version_core);
    tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
  });

  it('resume after epoch 2 to epoch 4 equals an uninterrupted 4-epoch run', async () => {
    const full = await run(4, [new Counter()]);
    const dir = tmp();
    await run(2, [new Counter(), new ModelCheckpoint({ dirpath: dir, saveLast: true })]);
    const counter = new Counter();
    const tensorsBefore = tf.memory().numTensors;
    // A different initial seed: everything must come from the checkpoint.
    const resumed = await run(4, [counter], path.join(dir, 'last.ckpt'), 123);
    expect(maxAbsDiff(full.w, resumed.w)).toBeLessThanOrEqual(1e-6);
    for (const k of ['train_loss', 'train_acc', 'val_loss', 'val_acc']) expect(resumed.metrics[k]).toBeCloseTo(full.metrics[k], 6);
    expect(resumed.trainer.globalStep).toBe(full.trainer.globalStep);
    expect(counter.epochs).toBe(4);
    // Restoring creates no tensors that outlive the run (model and optimizer are disposed by run()).
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('resume mid-epoch from an every-N-steps checkpoint equals an uninterrupted run', async () => {
    const full = await run(3, []);
    const dir = tmp();
    const stopper: Callback = {
      onTrainBatchEnd: (t) => {
        if (t.globalStep === 7) throw new Error('simulated crash');
      },
    };
    await expect(run(3, [new ModelCheckpoint({ dirpath: dir, everyNSteps: 3, saveLast: true, saveTopK: 0 }), stopper])).rejects.toThrow(/simulated crash/);
    const meta = readCheckpoint(path.join(dir, 'last.ckpt'));
    tf.dispose([...Object.values(meta.modelState), ...Object.values(meta.optimizerSlots)]);
    expect(meta.meta).toMatchObject({ epoch: 1, batch: 1, globalStep: 6 });
    const resumed = await run(3, [], path.join(dir, 'last.ckpt'), 99);
    expect(maxAbsDiff(full.w, resumed.w)).toBeLessThanOrEqual(1e-6);
    expect(resumed.metrics.train_loss).toBeCloseTo(full.metrics.train_loss, 6);
  });

  it('resume after an epoch cut short by limitTrainBatches draws the next epoch exactly as an uninterrupted run', async () => {
    const limited = { limitTrainBatches: 3 };
    const full = await run(3, [], undefined, 0, limited);
    const dir = tmp();
    await run(1, [new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 })], undefined, 0, limited);
    const resumed = await run(3, [], path.join(dir, 'last.ckpt'), 31, limited);
    expect(maxAbsDiff(full.w, resumed.w)).toBeLessThanOrEqual(1e-6);
  });

  it('EarlyStopping state goes into the checkpoint and comes back', async () => {
    const dir = tmp();
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 50 });
    await run(2, [es, new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 })]);
    const es2 = new EarlyStopping({ monitor: 'val_loss', patience: 50 });
    await run(3, [es2], path.join(dir, 'last.ckpt'));
    const meta = readCheckpoint(path.join(dir, 'last.ckpt'));
    tf.dispose([...Object.values(meta.modelState), ...Object.values(meta.optimizerSlots)]);
    expect(meta.meta.callbacks[es.stateKey]).toMatchObject({ best: es.bestScore });
    expect(es2.bestScore).toBeLessThanOrEqual(es.bestScore);
  });

  it('loadCheckpoint puts weights into a fresh model; bad files raise typed errors', async () => {
    const dir = tmp();
    const a = tinyModule(0);
    const { train } = loaders(32);
    const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0 }, [new ModelCheckpoint({ dirpath: dir, filename: 'model' })]);
    await trainer.fit(a, train);
    const b = tinyModule(42);
    const meta = loadCheckpoint(path.join(dir, 'model.ckpt'), b.model);
    expect(meta.epoch).toBe(1);
    expect(maxAbsDiff(weights(a), weights(b))).toBe(0);
    trainer.optimizerConfig!.optimizer.dispose();
    const bad = path.join(dir, 'bad.ckpt');
    writeFileSync(bad, 'not a checkpoint at all');
    expect(() => readCheckpoint(bad)).toThrow(DataFormatError);
    expect(() => readCheckpoint(path.join(dir, 'missing.ckpt'))).toThrow(/missing\.ckpt/);
  });
});
