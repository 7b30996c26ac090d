// CommonJS consumer: loads the checkpoint train.mjs wrote into LeNet-5, gives it a 2-class head,
// freezes the backbone and fine-tunes; the backbone must not move, the head must.
//   node fine-tune.cjs <checkpoint-dir>
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { BackendRegistry } = require('@kiln/core');
const { wasmBackend } = require('@kiln/backend-cpu');
const { ArrayDataset, DataLoader } = require('@kiln/data');
const { LeNet5 } = require('@kiln/zoo');
const { ClassificationModule, createTrainer, loadCheckpoint } = require('@kiln/trainer');
const { synthetic } = require('./synthetic.cjs');

async function main() {
  const dir = process.argv[2];
  assert.ok(dir, 'usage: node fine-tune.cjs <checkpoint-dir>');
  const { name } = await new BackendRegistry([wasmBackend()]).use('auto');
  const model = new LeNet5();
  const meta = loadCheckpoint(path.join(dir, 'last.ckpt'), model);
  assert.equal(meta.epoch !== undefined, true, 'checkpoint metadata has an epoch');
  model.replaceHead(2);
  model.freezeBackbone();
  const snapshot = () => Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, Array.from(t.dataSync())]));
  const before = snapshot();

  const d = synthetic(128, 2, 7);
  const trainer = createTrainer({ maxEpochs: 1, limitTrainBatches: 4, numSanityValSteps: 0, seed: 0 });
  await trainer.fit(new ClassificationModule(model, { lr: 1e-2 }), new DataLoader(new ArrayDataset(d.x, d.y, d.shape), { batchSize: 32 }));

  const after = snapshot();
  const moved = Object.keys(after).filter((k) => after[k].some((v, i) => v !== before[k][i]));
  assert.ok(moved.length > 0, 'the head trained');
  assert.ok(moved.every((k) => k.startsWith('classifier.4.')), `only the head may change; changed: ${moved.join(', ')}`);
  console.log(`fine-tune.cjs: ok on ${name} (node ${process.version}); trained ${moved.join(', ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
