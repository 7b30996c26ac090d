#!/usr/bin/env node
// Soak test (on demand, not in CI): trains LeNet-5 on Fashion-MNIST for a fixed wall-clock time
// with every built-in callback and logger switched on, and records after each epoch the live
// tensor count, tensor bytes, the process RSS, the WASM heap and V8's heap (after a full GC).
// Callbacks that start later allocate once when they do (StochasticWeightAveraging's average, the
// larger accumulation window), so both start in epoch 1; the run passes when, from the end of
// epoch 1 on, the tensor count is flat and RSS stays within 5% of its value then.
//
//   npm run build && node --expose-gc tools/soak/run.mjs --minutes 30 --out soak-results
//
// Options: --minutes M (default 30), --limit-train N (examples per epoch, default 6000),
// --out DIR (default soak-results; the run directory and soak.json go there).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { tf, manualSeed } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, fashionMnist, holdOut } from '@kiln/data';
import { LeNet5 } from '@kiln/zoo';
import { Adam } from '@kiln/optim';
import {
  ClassificationModule, ConsoleLogger, CsvLogger, EarlyStopping, GradientAccumulationScheduler, JsonlLogger, LearningRateMonitor,
  ModelCheckpoint, ModelSummary, ProgressBar, ReduceLROnPlateau, StochasticWeightAveraging, TensorBoardLogger, TensorLeakCheck,
  TerminateOnNaN, Timer, Trainer,
} from '@kiln/trainer';

const { values } = parseArgs({ options: { minutes: { type: 'string' }, 'limit-train': { type: 'string' }, out: { type: 'string' } } });
const minutes = Number(values.minutes ?? 30);
const limit = Number(values['limit-train'] ?? 6000);
const out = path.resolve(values.out ?? 'soak-results');
mkdirSync(out, { recursive: true });

await wasmBackend().init();
manualSeed(0);
const [train, val] = holdOut((await fashionMnist('train')).take(limit + 1000), 1000);

const samples = [];
const t0 = performance.now();
/** Samples memory at every epoch end, after the other callbacks ran. */
const probe = {
  onTrainEpochEnd(trainer) {
    const m = tf.memory();
    // A full collection first (node --expose-gc), so RSS and heap reflect what is live, not what GC has not reached yet.
    globalThis.gc?.();
    const u = process.memoryUsage();
    const wasm = tf.backend()?.wasm?.HEAPU8?.length ?? 0;
    samples.push({ epoch: trainer.currentEpoch, minutes: (performance.now() - t0) / 60000, numTensors: m.numTensors, numBytes: m.numBytes, rssMiB: u.rss / 2 ** 20, wasmMiB: wasm / 2 ** 20, heapMiB: u.heapUsed / 2 ** 20, externalMiB: u.external / 2 ** 20 });
    const s = samples.at(-1);
    process.stderr.write(`soak: epoch ${s.epoch} at ${s.minutes.toFixed(1)} min: ${s.numTensors} tensors, ${(s.numBytes / 2 ** 20).toFixed(1)} MiB tensors, RSS ${s.rssMiB.toFixed(0)} MiB, WASM heap ${s.wasmMiB.toFixed(0)} MiB, heap ${s.heapMiB.toFixed(1)} MiB, external ${s.externalMiB.toFixed(1)} MiB\n`);
  },
};

const module = new ClassificationModule(new LeNet5(), {
  optimizer: (m) => new Adam(m.trainableVariables(), { lr: 1e-3 }),
});
const run = path.join(out, 'run');
const trainer = new Trainer(
  { maxEpochs: -1, maxSteps: -1, seed: 0, logEveryNSteps: 20 },
  [
    new ProgressBar({ refreshEvery: 50 }),
    new ModelSummary(),
    new EarlyStopping({ monitor: 'val_loss', patience: 10_000 }),
    new ModelCheckpoint({ dirpath: path.join(run, 'checkpoints'), monitor: 'val_loss', saveTopK: 2, saveLast: true, everyNSteps: 50 }),
    new ReduceLROnPlateau({ monitor: 'val_loss', patience: 3, factor: 0.5 }),
    new LearningRateMonitor(),
    new StochasticWeightAveraging({ swaEpochStart: 1 }),
    new GradientAccumulationScheduler({ scheduling: { 0: 1, 1: 2 } }),
    new TensorLeakCheck(),
    new TerminateOnNaN({ checkGradients: true }),
    new Timer({ duration: { minutes } }),
    probe,
  ],
  [new CsvLogger({ dir: run }), new JsonlLogger({ dir: run }), new TensorBoardLogger({ dir: path.join(run, 'tb') }), new ConsoleLogger(() => undefined)],
);
await trainer.fit(module, new DataLoader(train, { batchSize: 64, shuffle: true }), new DataLoader(val, { batchSize: 256 }));

// Verdict: from the settled epoch on, tensor count flat and RSS within 5% of its value then.
const SETTLED = 1;
const after = samples.filter((s) => s.epoch >= SETTLED);
const base = after[0];
const tensorsFlat = after.every((s) => s.numTensors === after[0].numTensors);
const rssMax = Math.max(...after.map((s) => s.rssMiB));
const rssGrowth = base ? rssMax / base.rssMiB - 1 : NaN;
const verdict = { minutes, epochs: samples.length, tensorsFlat, tensorCount: after[0]?.numTensors, rssBaselineMiB: base?.rssMiB, rssMaxMiB: rssMax, rssGrowth, pass: tensorsFlat && rssGrowth <= 0.05 };
writeFileSync(path.join(out, 'soak.json'), JSON.stringify({ verdict, samples }, null, 2));
console.log(JSON.stringify(verdict));
process.exit(verdict.pass ? 0 : 1);
