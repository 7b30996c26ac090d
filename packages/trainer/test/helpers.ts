import { Rng, manualSeed } from '@kiln/core';
import { ArrayDataset, DataLoader } from '@kiln/data';
import { Dropout, Flatten, Linear, ReLU, Sequential } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { ClassificationModule } from '../src/index.js';

/** A small, learnable 3-class problem: the label is the arg-max of three fixed projections. */
export function syntheticDataset(n: number, seed = 1, features = 8): ArrayDataset {
  const r = new Rng(seed);
  const x = new Float32Array(n * features);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * features, (i + 1) * features);
    for (let j = 0; j < features; j++) row[j] = r.normal();
    const s = [row[0] + row[1], row[2] - row[3], row[4] + 0.5 * row[5]];
    y[i] = s.indexOf(Math.max(...s));
  }
  return new ArrayDataset(x, y, [features]);
}

/** A tiny MLP with dropout (so exact resume must restore the generator too) under Adam. */
export function tinyModule(seed = 0, lr = 0.01): ClassificationModule {
  manualSeed(seed);
  const model = new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 16 }), new ReLU(), new Dropout(0.2), new Linear({ inFeatures: 16, outFeatures: 3 }));
  return new ClassificationModule(model, { optimizer: (m) => new Adam(m.trainableVariables(), { lr }) });
}

export function loaders(nTrain = 64, nVal = 32, batchSize = 16): { train: DataLoader; val: DataLoader } {
  return {
    train: new DataLoader(syntheticDataset(nTrain, 1), { batchSize, shuffle: true, seed: 7 }),
    val: new DataLoader(syntheticDataset(nVal, 2), { batchSize }),
  };
}

/** Every parameter and buffer as plain arrays. */
export function weights(m: ClassificationModule): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(m.model.stateDict()).map(([k, v]) => [k, v.dataSync() as Float32Array]));
}

export function maxAbsDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let d = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) d = Math.max(d, Math.abs(a[k][i] - b[k][i]));
  return d;
}

/** Every hook of the Callback contract (checkpoint state methods aside), for recorders. */
export const CALLBACK_HOOKS = [
  'setup', 'teardown', 'onFitStart', 'onFitEnd', 'onSanityCheckStart', 'onSanityCheckEnd', 'onTrainStart', 'onTrainEnd',
  'onTrainEpochStart', 'onTrainEpochEnd', 'onTrainBatchStart', 'onTrainBatchEnd', 'onBeforeZeroGrad', 'onBeforeBackward',
  'onAfterBackward', 'onBeforeOptimizerStep', 'onValidationStart', 'onValidationEnd', 'onValidationEpochStart',
  'onValidationEpochEnd', 'onValidationBatchStart', 'onValidationBatchEnd', 'onTestStart', 'onTestEnd', 'onTestEpochStart',
  'onTestEpochEnd', 'onTestBatchStart', 'onTestBatchEnd', 'onPredictStart', 'onPredictEnd', 'onPredictEpochStart',
  'onPredictEpochEnd', 'onPredictBatchStart', 'onPredictBatchEnd', 'onException', 'onSaveCheckpoint', 'onLoadCheckpoint',
] as const;
