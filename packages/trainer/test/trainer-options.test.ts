import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, manualSeed } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader } from '@kiln/data';
import { BatchNorm1d, Flatten, Linear, ReLU, Sequential } from '@kiln/layers';
import { Adam, LrScheduler, SGD, findLr, stepLr } from '@kiln/optim';
import {
  ClassificationModule, CsvLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, Timer, Trainer, readCheckpoint, checkpointTensors, type Callback,
} from '../src/index.js';
import { loaders, syntheticDataset, tinyModule, weights } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-options-'));

/** Records which batches (by dataset indices) each epoch trained on. */
function batchSpy() {
  const seen: number[][] = [];
  const cb: Callback = { onTrainBatchStart: (_t, _m, batch) => void seen.push(Array.from((batch as { indices: Int32Array }).indices)) };
  return { seen, cb };
}

beforeAll(async () => {
  await wasmBackend().init();
});

describe('validation every N epochs and metric-watching callbacks', () => {
  it('decide only on epochs that validated: no E_NO_METRIC, no stale val_* values, best.ckpt always validated', async () => {
    const dir = tmp();
    const decisions: { epoch: number; fresh: boolean }[] = [];
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 100 });
    const ck = new ModelCheckpoint({ dirpath: dir, monitor: 'val_loss', saveLast: true, filename: 'e{epoch}' });
    const plateau = new ReduceLROnPlateau({ monitor: 'val_loss', patience: 0, factor: 0.5 });
    const spy: Callback = { onTrainEpochEnd: (t) => void decisions.push({ epoch: t.currentEpoch, fresh: t.freshMetrics.has('val_loss') }) };
    const module = tinyModule(0, 0.05);
    const { train, val } = loaders(64, 32, 16);
    const trainer = new Trainer({ maxEpochs: 6, checkValEveryNEpoch: 3, numSanityValSteps: 0, seed: 1 }, [spy, es, ck, plateau]);
    await trainer.fit(module, train, val);
    expect(decisions.map((d) => d.fresh)).toEqual([false, false, true, false, false, true]);
    // Two validations → EarlyStopping judged twice (wait counts validations, not epochs).
    expect((es.stateDict().wait as number) <= 1).toBe(true);
    // Only validated epochs (2 and 5) can be checkpointed by score.
    for (const f of ck.keptFiles) expect(['e2.ckpt', 'e5.ckpt']).toContain(path.basename(f));
    expect(['e2.ckpt', 'e5.ckpt']).toContain(path.basename(ck.bestModelPath));
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });

  it('see mid-epoch validations: ModelCheckpoint keeps a better mid-epoch model', async () => {
    const dir = tmp();
    const ck = new ModelCheckpoint({ dirpath: dir, monitor: 'val_loss', saveTopK: -1 });
    const module = tinyModule(0, 0.05);
    const { train, val } = loaders(64, 32, 16);
    const trainer = new Trainer({ maxEpochs: 1, valCheckInterval: 2, numSanityValSteps: 0, seed: 1 }, [ck]);
    await trainer.fit(module, train, val);
    // 4 batches, validation after batch 2 (mid-epoch) and at the end: two scored checkpoints.
    expect(ck.keptFiles.length).toBe(2);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });
});

describe('logged learning rate', () => {
  it("is the rate the epoch trained with, not the next epoch's", async () => {
    const dir = tmp();
    manualSeed(0);
    const model = new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 3 }));
    const module = new ClassificationModule(model, {
      configureOptimizers: (m) => {
        const optimizer = new SGD(m.trainableVariables(), { lr: 0.1 });
        return { optimizer, scheduler: new LrScheduler(optimizer, stepLr({ stepSize: 1, gamma: 0.5 })), interval: 'epoch' };
      },
    });
    const seen: number[] = [];
    const spy: Callback = { onTrainBatchStart: (t) => void seen.push(t.optimizerConfig!.optimizer.getLr()) };
    const { train } = loaders(32, 16, 16);
    const trainer = new Trainer({ maxEpochs: 3, numSanityValSteps: 0 }, [spy], [new CsvLogger({ dir, curves: false })]);
    await trainer.fit(module, train);
    const [head, ...rows] = readFileSync(path.join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    const lrCol = head.split(',').indexOf('lr');
    expect(rows.map((r) => Number(r.split(',')[lrCol]))).toEqual([0.1, 0.05, 0.025]);
    expect([seen[0], seen[2], seen[4]]).toEqual([0.1, 0.05, 0.025]);
    trainer.optimizerConfig!.optimizer.dispose();
    model.dispose();
  });
});

describe('EarlyStopping best weights across a resume', () => {
  it('a resumed run ends on the same restored weights as an uninterrupted one', async () => {
    const run = async (maxEpochs: number, ckptPath?: string, dir = tmp()) => {
      const es = new EarlyStopping({ monitor: 'val_loss', patience: 100, restoreBestWeights: true });
      const ck = new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 });
      // A large rate makes val_loss bounce, so the best epoch is not the last one.
      const module = tinyModule(0, 0.5);
      const { train, val } = loaders(64, 32, 16);
      const trainer = new Trainer({ maxEpochs, numSanityValSteps: 0, seed: 3 }, [es, ck]);
      await trainer.fit(module, train, val, ckptPath);
      const w = weights(module);
      trainer.optimizerConfig!.optimizer.dispose();
      module.model.dispose();
      return { w, dir };
    };
    const full = await run(8);
    const first = await run(4);
    const ck = readCheckpoint(path.join(first.dir, 'last.ckpt'));
    expect(Object.keys(ck.callbackTensors).some((k) => k.startsWith('EarlyStopping'))).toBe(true);
    tf.dispose(checkpointTensors(ck));
    const resumed = await run(8, path.join(first.dir, 'last.ckpt'), first.dir);
    for (const k of Object.keys(full.w)) expect(Array.from(resumed.w[k])).toEqual(Array.from(full.w[k]));
  });
});

describe('small options that did not do what they said', () => {
  it('overfitBatches: 1 trains and validates on exactly one batch', async () => {
    const { seen, cb } = batchSpy();
    const module = tinyModule();
    const { train, val } = loaders(64, 32, 16);
    const trainer = new Trainer({ maxEpochs: 2, overfitBatches: 1, numSanityValSteps: 0 }, [cb]);
    await trainer.fit(module, train, val);
    expect(seen.length).toBe(2);
    expect(seen[0]).toEqual(seen[1]);
    expect(seen[0].length).toBe(16);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });

  it('predict honours fastDevRun', async () => {
    const module = tinyModule();
    const trainer = new Trainer({ fastDevRun: 2 });
    const outs = await trainer.predict(module, new DataLoader(syntheticDataset(80), { batchSize: 16 }));
    expect(outs.length).toBe(2);
    tf.dispose(outs);
    module.model.dispose();
  });

  it("the trainer's seed reaches loaders built without one (and not those that chose their own)", async () => {
    const order = async (seed: number, loaderSeed?: number) => {
      const { seen, cb } = batchSpy();
      const module = tinyModule();
      const trainer = new Trainer({ maxEpochs: 1, seed, numSanityValSteps: 0 }, [cb]);
      await trainer.fit(module, new DataLoader(syntheticDataset(64), { batchSize: 16, shuffle: true, seed: loaderSeed }));
      trainer.optimizerConfig!.optimizer.dispose();
      module.model.dispose();
      return seen.flat();
    };
    expect(await order(1)).not.toEqual(await order(2));
    expect(await order(1)).toEqual(await order(1));
    expect(await order(1, 9)).toEqual(await order(2, 9));
  });

  it('Timer starts from zero in each separate fit', async () => {
    let clock = 0;
    const timer = new Timer({ duration: 10, now: () => clock });
    const tick: Callback = { onTrainBatchEnd: () => void (clock += 1000) };
    const fit = async () => {
      const module = tinyModule();
      const { train } = loaders(64, 16, 16);
      const trainer = new Trainer({ maxEpochs: 100, numSanityValSteps: 0 }, [tick, timer]);
      await trainer.fit(module, train);
      trainer.optimizerConfig!.optimizer.dispose();
      module.model.dispose();
      return trainer.globalStep;
    };
    expect(await fit()).toBe(10);
    expect(await fit()).toBe(10);
  });

  it('findLr puts batch-norm running statistics back', async () => {
    manualSeed(0);
    const model = new Sequential(new Linear({ inFeatures: 8, outFeatures: 16 }), new BatchNorm1d(16), new ReLU(), new Linear({ inFeatures: 16, outFeatures: 3 }));
    model.train();
    const x = tf.randomNormal([32, 8], 0, 1, 'float32', 1);
    const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 3), 'int32');
    const before = model.namedBuffers().map(([, b]) => Array.from(b.dataSync()));
    const optimizer = new Adam(model.trainableVariables(), { lr: 1e-3 });
    await findLr({
      loss: () => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 3), model.forward(x) as tf.Tensor2D) as tf.Scalar,
      optimizer,
      numSteps: 10,
      restore: model.namedBuffers().map(([, b]) => b),
    });
    expect(model.namedBuffers().map(([, b]) => Array.from(b.dataSync()))).toEqual(before);
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  });
});

describe('one accumulation, one clipping, and the configured monitor', () => {
  it('a last window cut short by the epoch end applies the mean of its own batches', async () => {
    // 3 batches of 16 with accumulateGradBatches 2: step 1 = mean of batches 0–1, step 2 = batch 2 alone.
    const ds = syntheticDataset(48);
    const make = () => {
      manualSeed(0);
      const model = new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 3 }));
      return new ClassificationModule(model, { optimizer: (m) => new SGD(m.trainableVariables(), { lr: 0.5 }) });
    };
    const a = make();
    const trainer = new Trainer({ maxEpochs: 1, accumulateGradBatches: 2, numSanityValSteps: 0 });
    await trainer.fit(a, new DataLoader(ds, { batchSize: 16 }));
    expect(trainer.globalStep).toBe(2);
    // Reference: the same two steps by hand, as full batches of 32 and 16 (mean losses).
    const b = make();
    const ref = new Trainer({ maxEpochs: 1, numSanityValSteps: 0 });
    await ref.fit(b, new DataLoader(ds, { batchSize: 32 }));
    const [wa, wb] = [weights(a), weights(b)];
    for (const k of Object.keys(wa)) wa[k].forEach((v, i) => expect(v).toBeCloseTo(wb[k][i], 5));
    a.model.dispose();
    b.model.dispose();
  });

  it('OptimizerConfig.monitor drives a plateau scheduler, only on epochs that validated', async () => {
    const stepped: unknown[] = [];
    const module = tinyModule();
    const base = module.configureOptimizers.bind(module);
    module.configureOptimizers = () => ({ ...base(), scheduler: { step: (v?: unknown) => void stepped.push(v) }, monitor: 'val_acc' });
    const { train, val } = loaders(64, 32, 16);
    const trainer = new Trainer({ maxEpochs: 4, checkValEveryNEpoch: 2, numSanityValSteps: 0 });
    await trainer.fit(module, train, val);
    expect(stepped.length).toBe(2);
    expect(stepped.every((v) => typeof v === 'number' && v >= 0 && v <= 1)).toBe(true);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });
});
