import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, type Batch } from '@kiln/data';
import { ClassificationModule, ModelCheckpoint, Trainer, readCheckpoint, type Callback, type StepOutput } from '../src/index.js';
import { SlowDataset } from '../../../tools/testing/slow-dataset.js';
import { maxAbsDiff, syntheticDataset, tinyModule, weights } from './helpers.js';

beforeAll(async () => {
  await wasmBackend().init();
});

/** Records, for every training step, the dataset's log so far. */
class Recording extends ClassificationModule {
  constructor(private readonly slow: SlowDataset) {
    super(tinyModule(0).model);
  }
  readonly inFlightAtStep: number[] = [];
  override trainingStep(batch: Batch): StepOutput {
    this.slow.events.push(`step:${this.inFlightAtStep.length}`);
    this.inFlightAtStep.push(this.slow.inFlight);
    return super.trainingStep(batch);
  }
}

describe('the Trainer on an AsyncDataset', () => {
  it('loads the next batches while a step runs (prefetch is used)', async () => {
    const slow = new SlowDataset(syntheticDataset(48, 1), 30);
    const module = new Recording(slow);
    const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, logEveryNSteps: 1000 });
    await trainer.fit(module, new DataLoader(slow, { batchSize: 8, prefetch: 2 }));
    const ev = slow.events;
    // Batch k+1 is requested before step k runs and is still loading while it runs.
    for (let k = 0; k < 5; k++) expect(ev.indexOf(`fetch:${k + 1}`)).toBeLessThan(ev.indexOf(`step:${k}`));
    for (let k = 0; k < 5; k++) expect(ev.indexOf(`done:${k + 1}`)).toBeGreaterThan(ev.indexOf(`step:${k}`));
    expect(module.inFlightAtStep.slice(0, 5).every((n) => n >= 1)).toBe(true);
    expect(module.inFlightAtStep).toHaveLength(6);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });

  it('iterates validation, test and predict loaders asynchronously too', async () => {
    const module = tinyModule(0);
    const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 1 });
    const val = new SlowDataset(syntheticDataset(20, 2));
    await trainer.fit(module, new DataLoader(new SlowDataset(syntheticDataset(32, 1)), { batchSize: 8 }), new DataLoader(val, { batchSize: 8 }));
    expect(trainer.callbackMetrics.val_loss).toBeGreaterThan(0);
    const test = await trainer.test(module, new DataLoader(new SlowDataset(syntheticDataset(20, 3)), { batchSize: 8 }));
    expect(test.test_acc).toBeGreaterThanOrEqual(0);
    const outs = await trainer.predict(module, new DataLoader(new SlowDataset(syntheticDataset(20, 3)), { batchSize: 8 }));
    expect(outs.map((o) => o.shape)).toEqual([[8, 3], [8, 3], [4, 3]]);
    tf.dispose(outs);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });

  async function run(maxEpochs: number, callbacks: Callback[], ckptPath?: string, seedOfFreshModel = 0, extra: ConstructorParameters<typeof Trainer>[0] = {}) {
    const module = tinyModule(seedOfFreshModel);
    const train = new DataLoader(new SlowDataset(syntheticDataset(80, 1), 1), { batchSize: 16, shuffle: true, seed: 7, prefetch: 3 });
    const val = new DataLoader(new SlowDataset(syntheticDataset(32, 2), 1), { batchSize: 16 });
    const trainer = new Trainer({ maxEpochs, seed: 5, numSanityValSteps: 1, ...extra }, callbacks);
    await trainer.fit(module, train, val, ckptPath);
    const w = weights(module);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
    return { w, metrics: trainer.callbackMetrics };
  }

  it('resumes mid-epoch exactly: the same weights as an uninterrupted run', async () => {
    const full = await run(3, []);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-async-'));
    const crash: Callback = {
      onTrainBatchEnd: (t) => {
        if (t.globalStep === 7) throw new Error('simulated crash');
      },
    };
    await expect(run(3, [new ModelCheckpoint({ dirpath: dir, everyNSteps: 3, saveLast: true, saveTopK: 0 }), crash])).rejects.toThrow(/simulated crash/);
    const ck = readCheckpoint(path.join(dir, 'last.ckpt'));
    tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
    expect(ck.meta).toMatchObject({ epoch: 1, batch: 1, globalStep: 6 });
    const resumed = await run(3, [], path.join(dir, 'last.ckpt'), 99);
    expect(maxAbsDiff(full.w, resumed.w)).toBeLessThanOrEqual(1e-6);
    expect(resumed.metrics.train_loss).toBeCloseTo(full.metrics.train_loss, 6);
  });

  it('resumes exactly after an epoch cut short by limitTrainBatches', async () => {
    const limited = { limitTrainBatches: 3 };
    const full = await run(3, [], undefined, 0, limited);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-async-'));
    await run(1, [new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 })], undefined, 0, limited);
    const resumed = await run(3, [], path.join(dir, 'last.ckpt'), 31, limited);
    expect(maxAbsDiff(full.w, resumed.w)).toBeLessThanOrEqual(1e-6);
  });

  it('leaks no tensors when epochs are cut short with prefetched batches pending', async () => {
    const slow = new SlowDataset(syntheticDataset(96, 1), 3);
    const module = tinyModule(0);
    const perEpoch: number[] = [];
    const probe: Callback = { onTrainEpochEnd: () => void perEpoch.push(tf.memory().numTensors) };
    const trainer = new Trainer({ maxEpochs: 4, numSanityValSteps: 0, limitTrainBatches: 2 }, [probe]);
    await trainer.fit(module, new DataLoader(slow, { batchSize: 8, shuffle: true, prefetch: 4 }));
    // Each epoch ran 2 of 12 batches while up to 4 more were being read.
    expect(slow.requests).toBeGreaterThan(4 * 2);
    expect(perEpoch).toHaveLength(4);
    expect(new Set(perEpoch).size).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(slow.inFlight).toBe(0);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });
});
