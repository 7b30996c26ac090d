// Transfer learning from a checkpoint: LeNet-5 learns Fashion-MNIST's clothes (classes 0–4), is
// saved, then loaded with a new 5-way head for the shoes and bags (classes 5–9), first with the
// backbone frozen (only the head trains), as in docs/fine-tuning.md.
//   node examples/transfer-learning.mjs [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArrayDataset, DataLoader } from '@kiln/data';
import { LeNet5 } from '@kiln/zoo';
import { ClassificationModule, ModelCheckpoint, callback, createTrainer, loadCheckpoint } from '@kiln/trainer';
import { budget, fashionMnistSplits, startBackend } from './shared.mjs';

/** The examples of `classes`, relabelled 0..k-1 in that order. */
function selectClasses(ds, classes) {
  const indices = [];
  for (let i = 0; i < ds.length; i++) if (classes.includes(ds.y[i])) indices.push(i);
  const sub = ds.subset(indices);
  return new ArrayDataset(sub.x, Int32Array.from(sub.y, (c) => classes.indexOf(c)), sub.shape);
}

await startBackend();
const { train, val, test } = await fashionMnistSplits({ limit: 2048 });
const clothes = [0, 1, 2, 3, 4];
const shoesAndBags = [5, 6, 7, 8, 9];
const dir = mkdtempSync(path.join(tmpdir(), 'kiln-transfer-'));
const loader = (ds, shuffle = false) => new DataLoader(ds, { batchSize: 64, shuffle });

// 1. The source model, checkpointed.
const source = createTrainer({ ...budget({ maxEpochs: 2 }), seed: 0, plugins: [callback(new ModelCheckpoint({ dirpath: dir, saveLast: true }))] });
await source.fit(new ClassificationModule(new LeNet5({ numClasses: 5 }), { lr: 1e-3 }), loader(selectClasses(train, clothes), true), loader(selectClasses(val, clothes)));

// 2. A new model from the checkpoint, with a fresh head for the new classes and a frozen backbone.
const model = new LeNet5({ numClasses: 5 });
const meta = loadCheckpoint(path.join(dir, 'last.ckpt'), model);
console.error(`loaded the checkpoint of epoch ${meta.epoch}, step ${meta.globalStep}`);
model.replaceHead(shoesAndBags.length);
model.freezeBackbone();
const target = createTrainer({ ...budget({ maxEpochs: 3 }), seed: 0 });
const module = new ClassificationModule(model, { lr: 1e-2 });
await target.fit(module, loader(selectClasses(train, shoesAndBags), true), loader(selectClasses(val, shoesAndBags)));
const metrics = await target.test(module, loader(selectClasses(test, shoesAndBags)));
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(metrics));
