// ESM consumer: trains LeNet-5 for a few batches with a custom callback and writes a checkpoint.
//   node train.mjs <checkpoint-dir>
import assert from 'node:assert/strict';
import { BackendRegistry, tf } from '@kiln/core';
import { loadDnnl, wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader } from '@kiln/data';
import { LeNet5 } from '@kiln/zoo';
import { ClassificationModule, ModelCheckpoint, callback, createTrainer } from '@kiln/trainer';
import { synthetic } from './synthetic.cjs';

const dir = process.argv[2];
assert.ok(dir, 'usage: node train.mjs <checkpoint-dir>');
const { name } = await new BackendRegistry([wasmBackend()]).use('auto');

/** A user's own callback: counts batches, keeps the losses, records the hooks it saw. */
class Recorder {
  hooks = [];
  losses = [];
  onFitStart() { this.hooks.push('onFitStart'); }
  onTrainEpochStart() { this.hooks.push('onTrainEpochStart'); }
  onTrainBatchEnd(trainer) { this.losses.push(trainer.lastTrainMetrics.train_loss); }
  onTrainEpochEnd() { this.hooks.push('onTrainEpochEnd'); }
  onFitEnd() { this.hooks.push('onFitEnd'); }
}

const d = synthetic(512, 10, 1);
const train = new ArrayDataset(d.x, d.y, d.shape);
const recorder = new Recorder();
const trainer = createTrainer({
  maxEpochs: 2,
  limitTrainBatches: 12,
  numSanityValSteps: 0,
  seed: 0,
  plugins: [callback(recorder), callback(new ModelCheckpoint({ dirpath: dir, saveLast: true }))],
});
const module = new ClassificationModule(new LeNet5(), { lr: 3e-3 });
const before = tf.memory().numTensors;
await trainer.fit(module, new DataLoader(train, { batchSize: 32, shuffle: true }));

// The runner sets this when backend-cpu's install built the oneDNN addon: it must load here.
if (process.env.KILN_EXPECT_DNNL === '1') {
  const dnnl = loadDnnl();
  assert.ok(dnnl.loaded, `the addon built on install does not load: ${dnnl.loaded || dnnl.reason}`);
}
assert.deepEqual(recorder.hooks, ['onFitStart', 'onTrainEpochStart', 'onTrainEpochEnd', 'onTrainEpochStart', 'onTrainEpochEnd', 'onFitEnd']);
assert.equal(recorder.losses.length, 24);
assert.ok(recorder.losses.every(Number.isFinite), `losses: ${recorder.losses}`);
const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
const first = mean(recorder.losses.slice(0, 4));
const last = mean(recorder.losses.slice(-4));
assert.ok(last < first, `loss did not fall: first batches ${first.toFixed(3)}, last ${last.toFixed(3)}`);
assert.ok(tf.memory().numTensors <= before + 64, `tensors grew from ${before} to ${tf.memory().numTensors}`);
console.log(`train.mjs: ok on ${name} (node ${process.version}); loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
