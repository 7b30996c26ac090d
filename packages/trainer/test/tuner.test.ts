import { beforeAll, describe, expect, it } from 'vitest';
import { tf, manualSeed, defaultRng, liveTensors } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader } from '@kiln/data';
import { BatchNorm1d, Dropout, Flatten, Linear, Module, ReLU, Sequential, l2 } from '@kiln/layers';
import { Adam, SGD } from '@kiln/optim';
import { ClassificationModule, Trainer, TrainingModule, Tuner, batchSizeChart, createTuner, isAllocationFailure, lrFindChart, type StepOutput } from '../src/index.js';
import { syntheticDataset } from './helpers.js';

beforeAll(async () => {
  await wasmBackend().init();
});

/** An MLP with batch norm (running statistics) and dropout (the generator) under Adam. */
function bnModule(seed = 0): ClassificationModule {
  manualSeed(seed);
  const model = new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 16 }), new BatchNorm1d(16), new ReLU(), new Dropout(0.2), new Linear({ inFeatures: 16, outFeatures: 3 }));
  return new ClassificationModule(model, { optimizer: (m) => new Adam(m.trainableVariables(), { lr: 1e-3 }) });
}

const stateOf = (m: TrainingModule) => Object.fromEntries(Object.entries(m.model.stateDict()).map(([k, v]) => [k, Array.from(v.dataSync())]));

/**
 * f(w) = a/2 · |w|², whatever the batch: gradient descent on it diverges exactly when lr > 2/a.
 * Centred on 0, where float32 is dense, so w shrinks without rounding to the minimum exactly.
 */
class Bowl extends Module {
  readonly w = this.registerParameter('w', tf.fill([4], -1));
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}
class Quadratic extends TrainingModule {
  readonly model = new Bowl();
  constructor(private readonly a: number) {
    super();
  }
  trainingStep(): StepOutput {
    const loss = tf.mul(this.a / 2, tf.sum(tf.square(this.model.w.variable))) as tf.Scalar;
    return { loss, logs: {}, batchSize: 1 };
  }
  configureOptimizers() {
    return { optimizer: new SGD(this.model.trainableVariables(), { lr: 0.1 }) };
  }
}

/** A parameter with no loss of its own: its only objective is its L2 penalty, λ·Σw² = 0.5 · 4 = 2 at the start. */
class PenaltyOnly extends TrainingModule {
  readonly model = new (class extends Module {
    readonly w = this.registerParameter('w', tf.fill([4], -1), { regularizer: l2(0.5) });
    forward(x: tf.Tensor): tf.Tensor {
      return x;
    }
  })();
  trainingStep(): StepOutput {
    return { loss: tf.scalar(0), logs: {}, batchSize: 1 };
  }
  configureOptimizers() {
    return { optimizer: new SGD(this.model.trainableVariables(), { lr: 0.1 }) };
  }
}

describe('Tuner.lrFind', () => {
  it('sweeps the loss the trainer minimises: regularizer penalties included', async () => {
    const module = new PenaltyOnly();
    const loader = new DataLoader(syntheticDataset(8, 1), { batchSize: 4 });
    const result = await new Tuner().lrFind(module, loader, { numSteps: 12, startLr: 1e-3, endLr: 0.5 });
    // The first step's loss is the penalty alone (trainingStep's loss is 0) ...
    expect(result.losses[0]).toBeCloseTo(2, 6);
    // ... and its gradient moves w: every later loss is smaller (without the penalty, all were 0).
    expect(result.losses.at(-1)!).toBeLessThan(result.losses[0] * 0.9);
    module.model.dispose();
  });

  it('puts back weights, batch-norm statistics, the generator and the loader, leaks nothing, and the next fit is unchanged', async () => {
    const data = syntheticDataset(96, 1);
    const tuned = bnModule();
    const before = stateOf(tuned);
    const rng = defaultRng().getState();
    const loader = new DataLoader(data, { batchSize: 16, shuffle: true, seed: 3 });
    const loaderState = loader.stateDict();
    const tensors = liveTensors();
    const result = await new Tuner().lrFind(tuned, loader, { numSteps: 30, startLr: 1e-5, endLr: 1 });
    expect(result.lrs.length).toBeGreaterThan(10);
    expect(liveTensors()).toBe(tensors);
    // Exactly equal: every parameter and every running mean/variance.
    const after = stateOf(tuned);
    expect(Object.keys(after).some((k) => k.includes('running_mean'))).toBe(true);
    expect(after).toEqual(before);
    expect(defaultRng().getState()).toEqual(rng);
    expect(loader.stateDict()).toEqual(loaderState);
    expect(tuned.model.training).toBe(true);

    // A run after tuning ends on the same weights as the same run never tuned.
    const fitOf = async (m: ClassificationModule) => {
      const t = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, seed: 5 });
      await t.fit(m, new DataLoader(data, { batchSize: 16, shuffle: true, seed: 3 }));
      t.optimizerConfig?.optimizer.dispose();
      return stateOf(m);
    };
    const plain = bnModule();
    expect(await fitOf(tuned)).toEqual(await fitOf(plain));
    tuned.model.dispose();
    plain.model.dispose();
  });

  it('on a quadratic bowl, the loss first rises at the step past lr = 2/a, and the suggestion lies below it', async () => {
    const a = 50;
    const module = new Quadratic(a);
    const loader = new DataLoader(new ArrayDataset(new Float32Array(8), new Int32Array(8), [1]), { batchSize: 4 });
    const r = await createTuner().lrFind(module, loader, { startLr: 1e-5, endLr: 1, numSteps: 120 });
    // Closed form: each step scales the loss by (1 − lr·a)², so it grows exactly when lr > 2/a.
    const rise = r.losses.findIndex((l, i) => i + 1 < r.losses.length && r.losses[i + 1] > l);
    expect(r.lrs[rise]).toBeGreaterThan(2 / a);
    expect(r.lrs[rise - 1]).toBeLessThanOrEqual(2 / a);
    expect(r.diverged).toBe(true);
    expect(r.suggestion).toBeLessThan(2 / a);
    expect(r.suggestion).toBeGreaterThan(0.01 / a);
    // And the bowl's parameter is back where it started.
    expect(Array.from(module.model.w.variable.dataSync())).toEqual([-1, -1, -1, -1]);
    module.model.dispose();
    // The chart marks the suggestion in its own colour at the suggested rate's column.
    const chart = lrFindChart(r);
    const img = chart.raster();
    const x = Math.round(chart.frames[0].xPixel(r.suggestion));
    const { plot } = chart.frames[0];
    let green = 0;
    for (let y = plot.y + 2; y < plot.y + plot.h - 2; y++) if (img.get(x, y).join() === '44,160,44') green++;
    expect(green).toBeGreaterThan(plot.h / 4);
  });

  it('refuses a module with manual optimization', async () => {
    const m = bnModule();
    m.automaticOptimization = false;
    await expect(new Tuner().lrFind(m, new DataLoader(syntheticDataset(16), { batchSize: 8 }))).rejects.toThrow(/automaticOptimization/);
    m.model.dispose();
  });
});

describe('Tuner.scaleBatchSize', () => {
  it('stops at the memory budget it is given, restores the module and leaks no tensors', async () => {
    const data = syntheticDataset(256, 1);
    const module = bnModule();
    const loader = new DataLoader(data, { batchSize: 4, shuffle: true, seed: 3 });
    const before = stateOf(module);
    const tensors = liveTensors();
    const tuner = new Tuner();
    // First without a budget (and no speed stop), to learn the peak memory of each size.
    const free = await tuner.scaleBatchSize(module, loader, { maxBatchSize: 64, steps: 1, minThroughputRatio: 1e-9 });
    expect(free.trials.map((t) => t.batchSize)).toEqual([4, 8, 16, 32, 64]);
    expect(free.suggestion).toBe(64);
    const peak = Object.fromEntries(free.trials.map((t) => [t.batchSize, t.peakBytes]));
    expect(peak[32]).toBeGreaterThan(peak[16]);
    // A budget between the peaks of 16 and 32: 32 must be refused, 16 suggested.
    const budget = (peak[16] + peak[32]) / 2;
    const capped = await tuner.scaleBatchSize(module, loader, { maxBatchSize: 64, steps: 1, memoryBudget: budget, minThroughputRatio: 1e-9 });
    expect(capped.suggestion).toBe(16);
    expect(capped.stoppedBecause).toBe('memory budget');
    expect(capped.trials.at(-1)).toMatchObject({ batchSize: 32, fits: false, failure: 'memory budget' });
    // Binary search between 16 and 32 finds a size above 16 that still fits.
    const searched = await tuner.scaleBatchSize(module, loader, { mode: 'binsearch', maxBatchSize: 64, steps: 1, memoryBudget: budget, minThroughputRatio: 1e-9 });
    expect(searched.suggestion).toBeGreaterThan(16);
    expect(searched.suggestion).toBeLessThan(32);
    for (const t of searched.trials) expect(t.fits).toBe(t.peakBytes <= budget);
    expect(liveTensors()).toBe(tensors);
    expect(stateOf(module)).toEqual(before);
    // The chart plots the sizes that fitted.
    const chart = batchSizeChart(capped);
    expect(chart.frames).toHaveLength(2);
    expect(chart.frames[0].xTicks).toEqual([4, 8, 16]);
    module.model.dispose();
  });

  it('a failed allocation ends the search instead of the process', async () => {
    const module = bnModule();
    const step = module.trainingStep.bind(module);
    // The backend refusing batches above 24 as V8 refuses an oversized buffer.
    module.trainingStep = (batch) => {
      if ((batch.x as tf.Tensor).shape[0] > 24) throw new RangeError('Array buffer allocation failed');
      return step(batch);
    };
    const tensors = liveTensors();
    const r = await new Tuner().scaleBatchSize(module, new DataLoader(syntheticDataset(128), { batchSize: 8 }), { steps: 1, minThroughputRatio: 1e-9 });
    expect(r.suggestion).toBe(16);
    expect(r.stoppedBecause).toBe('out of memory');
    expect(liveTensors()).toBe(tensors);
    // Other errors are bugs, not memory: they propagate.
    module.trainingStep = () => {
      throw new TypeError('x is undefined');
    };
    await expect(new Tuner().scaleBatchSize(module, new DataLoader(syntheticDataset(32), { batchSize: 8 }), { steps: 1 })).rejects.toThrow(TypeError);
    module.model.dispose();
  });

  it('tells allocation failures from other errors', () => {
    expect(isAllocationFailure(new RangeError('Array buffer allocation failed'))).toBe(true);
    expect(isAllocationFailure(new Error('WebAssembly.Memory.grow(): Maximum memory size exceeded; could not grow memory'))).toBe(true);
    expect(isAllocationFailure(new Error('OOM when allocating tensor with shape[1024,1024]'))).toBe(true);
    expect(isAllocationFailure(new TypeError('x is undefined'))).toBe(false);
    expect(isAllocationFailure(new RangeError('Invalid array length'))).toBe(true);
    expect(isAllocationFailure('a string')).toBe(false);
  });

  it('checks its options', async () => {
    const module = bnModule();
    const loader = new DataLoader(syntheticDataset(32), { batchSize: 8 });
    await expect(new Tuner().scaleBatchSize(module, loader, { initBatchSize: 64, maxBatchSize: 32 })).rejects.toThrow(/initBatchSize/);
    await expect(new Tuner().scaleBatchSize(module, loader, { memoryBudget: -1 })).rejects.toThrow(/memoryBudget/);
    await expect(new Tuner().scaleBatchSize(module, loader, { mode: 'wild' as never })).rejects.toThrow(/mode/);
    module.model.dispose();
  });
});
