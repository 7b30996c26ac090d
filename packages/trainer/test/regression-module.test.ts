import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng, manualSeed, ShapeMismatchError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader, type Batch } from '@kiln/data';
import { Linear, ReLU, Sequential } from '@kiln/layers';
import { SGD } from '@kiln/optim';
import { MultiLabelClassificationModule, RegressionModule, Trainer, TrainingModule, multiLabelMetrics, type OptimizerConfig, type StepOutput } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

const W = [0.8, -1.5, 0.3, 2.0];
const B = 0.7;
const NOISE = 0.05;

/** y = w·x + b + N(0, 0.05²): a linear regression whose best achievable MSE is the noise variance. */
function linearData(n: number, seed: number): ArrayDataset<Float32Array> {
  const r = new Rng(seed);
  const x = new Float32Array(n * 4);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = B;
    for (let j = 0; j < 4; j++) {
      x[i * 4 + j] = r.normal();
      s += W[j] * x[i * 4 + j];
    }
    y[i] = s + NOISE * r.normal();
  }
  return new ArrayDataset(x, y, [4]);
}

async function fitRegression(loss: 'mse' | 'l1' | 'huber') {
  manualSeed(3);
  const model = new Linear({ inFeatures: 4, outFeatures: 1 });
  const module = new RegressionModule(model, { loss, lr: 0.05 });
  const trainer = new Trainer({ maxEpochs: 25, seed: 1, numSanityValSteps: 0 });
  await trainer.fit(module, new DataLoader(linearData(256, 1), { batchSize: 32, shuffle: true, seed: 2 }), new DataLoader(linearData(128, 9), { batchSize: 64 }));
  const test = await trainer.test(module, new DataLoader(linearData(128, 10), { batchSize: 128 }));
  const w = Array.from(model.weight.variable.dataSync());
  trainer.optimizerConfig!.optimizer.dispose();
  model.dispose();
  return { metrics: trainer.callbackMetrics, test, w };
}

describe('RegressionModule', () => {
  it('learns y = w·x + b from float targets: validation MSE near the noise floor, weights near w', async () => {
    const before = tf.memory().numTensors;
    const { metrics, test, w } = await fitRegression('mse');
    expect(metrics.val_mse).toBeLessThan(4 * NOISE * NOISE);
    expect(metrics.val_mae).toBeLessThan(0.1);
    expect(metrics.train_loss).toBeCloseTo(metrics.train_mse, 6);
    expect(test.test_mse).toBeLessThan(4 * NOISE * NOISE);
    for (let j = 0; j < 4; j++) expect(Math.abs(w[j] - W[j])).toBeLessThan(0.05);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('trains with the L1 and Huber losses too, logging loss, mae and mse', async () => {
    const l1 = await fitRegression('l1');
    expect(l1.metrics.val_loss).toBeCloseTo(l1.metrics.val_mae, 6);
    expect(l1.metrics.val_mse).toBeLessThan(0.05);
    const huber = await fitRegression('huber');
    expect(huber.metrics.val_mse).toBeLessThan(0.05);
    // Near the target the Huber loss is ½d², so it is about half the MSE.
    expect(huber.metrics.val_loss).toBeCloseTo(huber.metrics.val_mse / 2, 2);
  });

  it('overfitBatches keeps the float targets float (the schema of the loader goes with it)', async () => {
    manualSeed(3);
    const model = new Linear({ inFeatures: 4, outFeatures: 1 });
    const module = new RegressionModule(model, { lr: 0.05 });
    const trainer = new Trainer({ maxEpochs: 30, overfitBatches: 2, numSanityValSteps: 0 });
    await trainer.fit(module, new DataLoader(linearData(256, 1), { batchSize: 16, shuffle: true }));
    expect(trainer.callbackMetrics.train_mse).toBeLessThan(0.05);
    trainer.optimizerConfig!.optimizer.dispose();
    model.dispose();
  });

  it('meets a [B] target with [B, 1] predictions, and names both shapes otherwise', () => {
    const model = new Linear({ inFeatures: 4, outFeatures: 2 });
    const module = new RegressionModule(model);
    const batch: Batch = { x: tf.ones([3, 4]), y: tf.ones([3]), indices: Int32Array.of(0, 1, 2) };
    expect(() => module.trainingStep(batch)).toThrow(ShapeMismatchError);
    const one = new RegressionModule(new Linear({ inFeatures: 4, outFeatures: 1 }));
    const out = one.trainingStep(batch);
    expect(out.batchSize).toBe(3);
    expect(Object.keys(out.logs).sort()).toEqual(['loss', 'mae', 'mse']);
    tf.dispose([batch.x, batch.y, ...Object.values(out.logs)]);
    model.dispose();
    one.model.dispose();
  });
});

/** Three labels; label j holds when x_j + 0.5·x_{j+3} > 0.3, so label 1 and 2 are rarer than 1/2. */
function multiLabelData(n: number, seed: number): ArrayDataset<Float32Array> {
  const r = new Rng(seed);
  const x = new Float32Array(n * 6);
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 6; j++) x[i * 6 + j] = r.normal();
    for (let j = 0; j < 3; j++) y[i * 3 + j] = x[i * 6 + j] + 0.5 * x[i * 6 + j + 3] > 0.3 * j ? 1 : 0;
  }
  return new ArrayDataset(x, y, [6], ['a', 'b', 'c'], [3]);
}

describe('MultiLabelClassificationModule', () => {
  it('metrics: label accuracy and exact match of thresholded probabilities', () => {
    const logits = tf.tensor2d([
      [2, -1, 0.5],
      [-3, 4, -0.2],
    ]);
    const targets = tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const { labelAcc, exactMatch } = multiLabelMetrics(logits, targets);
    expect(labelAcc.dataSync()[0]).toBeCloseTo(5 / 6, 6);
    expect(exactMatch.dataSync()[0]).toBeCloseTo(1 / 2, 6);
    tf.dispose([logits, targets, labelAcc, exactMatch]);
  });

  it('learns a multi-label toy task with posWeight; predict gives per-label probabilities', async () => {
    manualSeed(5);
    const model = new Sequential(new Linear({ inFeatures: 6, outFeatures: 16 }), new ReLU(), new Linear({ inFeatures: 16, outFeatures: 3 }));
    const module = new MultiLabelClassificationModule(model, { posWeight: [1, 1.5, 2], optimizer: (m) => new SGD(m.trainableVariables(), { lr: 0.3, momentum: 0.9 }) });
    const trainer = new Trainer({ maxEpochs: 20, seed: 1, numSanityValSteps: 0 });
    const train = new DataLoader(multiLabelData(512, 1), { batchSize: 32, shuffle: true, seed: 3 });
    const val = new DataLoader(multiLabelData(256, 2), { batchSize: 128 });
    await trainer.fit(module, train, val);
    expect(trainer.callbackMetrics.val_label_acc).toBeGreaterThan(0.93);
    expect(trainer.callbackMetrics.val_exact_match).toBeGreaterThan(0.8);
    expect(trainer.callbackMetrics.val_loss).toBeLessThan(0.3);
    const probs = await trainer.predict(module, new DataLoader(multiLabelData(8, 3), { batchSize: 8 }));
    const p = probs[0].dataSync();
    expect(probs[0].shape).toEqual([8, 3]);
    expect(Array.from(p).every((v) => v >= 0 && v <= 1)).toBe(true);
    tf.dispose(probs);
    expect(module.hparams()).toMatchObject({ posWeight: [1, 1.5, 2], threshold: 0.5 });
    trainer.optimizerConfig!.optimizer.dispose();
    model.dispose();
  });
});

/** A module whose inputs are a record: two feature groups, one target; the sum of two linear maps. */
class TwoInputRegression extends TrainingModule {
  readonly a = new Linear({ inFeatures: 2, outFeatures: 1 });
  readonly b = new Linear({ inFeatures: 3, outFeatures: 1 });
  readonly model = new Sequential(this.a, this.b);
  trainingStep(batch: Batch<{ left: tf.Tensor; right: tf.Tensor }>): StepOutput {
    const pred = tf.add(this.a.forward(batch.x.left), this.b.forward(batch.x.right));
    const loss = tf.losses.meanSquaredError(tf.reshape(batch.y, pred.shape), pred) as tf.Scalar;
    return { loss, logs: { loss }, batchSize: batch.indices.length };
  }
  override validationStep(batch: Batch<{ left: tf.Tensor; right: tf.Tensor }>): StepOutput {
    return this.trainingStep(batch);
  }
  configureOptimizers(): OptimizerConfig {
    return { optimizer: new SGD(this.model.trainableVariables(), { lr: 0.1 }) };
  }
}

describe('records through the Trainer', () => {
  it('a dataset of { x: { left, right }, y } trains a module that reads both inputs', async () => {
    manualSeed(2);
    const r = new Rng(4);
    const examples = Array.from({ length: 128 }, () => {
      const left = Float32Array.from([r.normal(), r.normal()]);
      const right = Float32Array.from([r.normal(), r.normal(), r.normal()]);
      return { x: { left, right }, y: Float32Array.of(left[0] - 2 * right[2] + 0.5) };
    });
    const ds = { length: examples.length, get: (i: number) => examples[i] };
    const before = tf.memory().numTensors;
    const module = new TwoInputRegression();
    const trainer = new Trainer({ maxEpochs: 15, numSanityValSteps: 0 });
    await trainer.fit(module, new DataLoader(ds, { batchSize: 16, shuffle: true }), new DataLoader(ds, { batchSize: 64 }));
    expect(trainer.callbackMetrics.val_loss).toBeLessThan(1e-3);
    await expect(trainer.predict(module, new DataLoader(ds, { batchSize: 64 }))).rejects.toThrow(/override predictStep/);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
    // Record batches are disposed leaf by leaf.
    expect(tf.memory().numTensors).toBe(before);
  });
});
