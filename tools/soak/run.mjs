#!/usr/bin/env node
// Soak test (on demand, not in CI): trains LeNet-5 on Fashion-MNIST for a fixed wall-clock time
// with every built-in callback and logger switched on, and records after each epoch the live
// tensor count, tensor bytes, the process RSS, the WASM heap and V8's heap (after a full GC).
// Callbacks that start later allocate once when they do (StochasticWeightAveraging's average, the
// larger accumulation window, the optimizer state of the backbone BackboneFinetuning unfreezes),
// so all of them start in epoch 1. The verdict (verdict.mjs): the tensor count is flat from
// epoch 1 on; after a warm-up (the first 10% of the epochs) RSS stays within 5% of its baseline
// and has no fitted upward trend.
//
//   npm run build && node --expose-gc tools/soak/run.mjs --minutes 30 --out soak-results
//   node tools/soak/report.mjs soak-results/soak.json soak-results/memory.svg
//
// Options: --minutes M (default 30), --limit-train N (examples per epoch, default 6000),
// --out DIR (default soak-results; the run directory and soak.json go there), --debug (also
// record, per epoch, every process.memoryUsage() field, RSS by kind of mapping from
// /proc/self/smaps — glibc arenas, [heap], other anonymous memory, files — the thread count and
// names, the mappings that grew, and the RSS growth inside each callback's and logger's hooks),
// --heap-snapshots E1,E2,… (write V8 heap snapshots at those epoch ends, after a collection, as
// DIR/heap-<epoch>.heapsnapshot; compare two with tools/soak/heap-diff.mjs).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { parseArgs } from 'node:util';
import { judge } from './verdict.mjs';
import { mappingGrowth, mappings, procStatus, rssByKind, threadNames, wrapHooks } from './memory.mjs';
import { growYoungGenerationAtOnce } from '../../apps/cli/bin/young-generation.mjs';

// The way `kiln` starts (apps/cli/bin/kiln.mjs): V8's young generation grows to its cap in one
// step, before Kiln loads. KILN_V8_DEFAULTS=1 measures V8's default doubling instead.
const youngGenerationAtOnce = growYoungGenerationAtOnce();
const { tf, manualSeed } = await import('@kiln/core');
const { wasmBackend } = await import('@kiln/backend-cpu');
const { DataLoader, fashionMnist, holdOut } = await import('@kiln/data');
const { LeNet5 } = await import('@kiln/zoo');
const { Adam } = await import('@kiln/optim');
const {
  BackboneFinetuning, ClassificationModule, ConsoleLogger, CsvLogger, DeviceStatsMonitor, EMA, EarlyStopping, GradientAccumulationScheduler, JsonlLogger,
  LearningRateMonitor, LearningRateScheduler, ModelCheckpoint, ModelSummary, Profiler, ProgressBar, ReduceLROnPlateau,
  StochasticWeightAveraging, TensorBoardLogger, TensorLeakCheck, TerminateOnNaN, Timer, Trainer,
} = await import('@kiln/trainer');

const { values } = parseArgs({ options: { minutes: { type: 'string' }, 'limit-train': { type: 'string' }, out: { type: 'string' }, debug: { type: 'boolean' }, 'heap-snapshots': { type: 'string' } } });
const debug = values.debug === true;
const snapshotEpochs = new Set((values['heap-snapshots'] ?? '').split(',').filter(Boolean).map(Number));
const minutes = Number(values.minutes ?? 30);
const limit = Number(values['limit-train'] ?? 6000);
const out = path.resolve(values.out ?? 'soak-results');
mkdirSync(out, { recursive: true });

await wasmBackend().init();
manualSeed(0);
const [train, val] = holdOut((await fashionMnist('train')).take(limit + 1000), 1000);

const samples = [];
const growth = []; // --debug: mappings that grew between two epoch ends
const hookTotals = {}; // --debug: RSS growth inside each callback's and logger's hooks
let lastMaps = debug ? mappings() : undefined;
let lastThreads; // --debug: thread names by count, logged at the first epoch and whenever they change
let epochNow = -1;
const t0 = performance.now();
/** Samples memory at every epoch end, after the other callbacks ran. */
const probe = {
  onTrainEpochEnd(trainer) {
    epochNow = trainer.currentEpoch;
    const m = tf.memory();
    // A full collection first (node --expose-gc), so RSS and heap reflect what is live, not what GC has not reached yet.
    globalThis.gc?.();
    // V8 frees the backing stores of the ArrayBuffers a collection found dead on a background
    // thread, after the collection returns: run E caught a 9.3 MiB set of them still counted
    // (`external`) and resident at 10 of 751 epoch ends, absent from a heap snapshot taken right
    // after. A second full collection first finishes that sweep (Heap::CompleteSweepingFull), so the
    // sample is what is live.
    // The first collection's `external` is kept to show what the second one released.
    const externalAfterFirstGc = process.memoryUsage().external;
    globalThis.gc?.();
    const u = process.memoryUsage();
    const wasm = tf.backend()?.wasm?.HEAPU8?.length ?? 0;
    if (snapshotEpochs.has(trainer.currentEpoch)) v8.writeHeapSnapshot(path.join(out, `heap-${trainer.currentEpoch}.heapsnapshot`));
    const s = { epoch: trainer.currentEpoch, minutes: (performance.now() - t0) / 60000, load1: os.loadavg()[0], numTensors: m.numTensors, numBytes: m.numBytes, rssMiB: u.rss / 2 ** 20, wasmMiB: wasm / 2 ** 20, heapMiB: u.heapUsed / 2 ** 20, heapTotalMiB: u.heapTotal / 2 ** 20, externalMiB: u.external / 2 ** 20, externalFirstGcMiB: externalAfterFirstGc / 2 ** 20 };
    // The young generation's size (both semi-spaces) and the old space's, always: they tell V8's
    // sizing (young generation stepping up) from live data (old space filling).
    for (const sp of v8.getHeapSpaceStatistics()) if (sp.space_name === 'new_space' || sp.space_name === 'old_space') s[`v8_${sp.space_name}_MiB`] = sp.space_size / 2 ** 20;
    if (debug) {
      const maps = mappings();
      Object.assign(s, { arrayBuffersMiB: u.arrayBuffers / 2 ** 20, ...procStatus(), ...rssByKind(maps) });
      // V8's spaces: the young generation's semi-spaces grow (×2 per step, up to --max-semi-space-size) with the allocation rate.
      for (const sp of v8.getHeapSpaceStatistics()) if (sp.space_size > 0) s[`v8_${sp.space_name}_MiB`] = sp.space_size / 2 ** 20;
      for (const g of mappingGrowth(lastMaps, maps)) growth.push({ epoch: s.epoch, ...g });
      lastMaps = maps;
      const threads = JSON.stringify(threadNames());
      if (threads !== lastThreads) {
        s.threadNames = threads;
        process.stderr.write(`soak: epoch ${s.epoch}: threads now ${threads}\n`);
        lastThreads = threads;
      }
    }
    samples.push(s);
    const arenas = debug ? `, [heap] ${(s.heapKiB / 1024).toFixed(0)} MiB, ${s.arenaCount} arenas ${(s.arenasKiB / 1024).toFixed(0)} MiB, other anon ${(s.anonOtherKiB / 1024).toFixed(0)} MiB (V8 heap ${s.heapTotalMiB.toFixed(0)} MiB, new space ${s.v8_new_space_MiB?.toFixed(0)} MiB), ${s.threads} threads` : '';
    process.stderr.write(`soak: epoch ${s.epoch} at ${s.minutes.toFixed(1)} min: ${s.numTensors} tensors, ${(s.numBytes / 2 ** 20).toFixed(1)} MiB tensors, RSS ${s.rssMiB.toFixed(0)} MiB, WASM heap ${s.wasmMiB.toFixed(0)} MiB, heap ${s.heapMiB.toFixed(1)} MiB, external ${s.externalMiB.toFixed(1)} MiB${arenas}\n`);
  },
};

const module = new ClassificationModule(new LeNet5(), {
  optimizer: (m) => new Adam(m.trainableVariables(), { lr: 1e-3 }),
});
const run = path.join(out, 'run');
const callbacks = [
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
  new EMA({ decay: 0.999 }),
  // LeNet-5's convolutional part is the backbone; it joins training (a second parameter group)
  // at the start of epoch 1, and its rate then ramps up each epoch.
  new BackboneFinetuning({ backbone: 'features', unfreezeAtEpoch: 1 }),
  new DeviceStatsMonitor({ everyNSteps: 50 }),
  // The identity schedule: the hook runs every epoch without fighting ReduceLROnPlateau's changes.
  new LearningRateScheduler({ schedule: (_epoch, lr) => lr }),
  // Hook and loop timings only (per-kernel timing is for profiling a few epochs, not a soak); its
  // trace keeps at most 10,000 events, which it reaches in the warm-up.
  new Profiler({ dirpath: path.join(run, 'profile'), kernels: false, maxTraceEvents: 10_000 }),
];
const loggers = [new CsvLogger({ dir: run }), new JsonlLogger({ dir: run }), new TensorBoardLogger({ dir: path.join(run, 'tb') }), new ConsoleLogger(() => undefined)];
if (debug) wrapHooks([...callbacks, ...loggers].map((object) => ({ label: object.constructor.name, object })), hookTotals, () => epochNow);
const trainer = new Trainer({ maxEpochs: -1, maxSteps: -1, seed: 0, logEveryNSteps: 20 }, [...callbacks, probe], loggers);
await trainer.fit(module, new DataLoader(train, { batchSize: 64, shuffle: true }), new DataLoader(val, { batchSize: 256 }));

// Verdict (tools/soak/verdict.mjs): tensors flat from epoch 1; after the warm-up, RSS within 5%
// of its baseline and no fitted upward trend.
const verdict = { minutes, youngGenerationAtOnce, ...judge(samples) };
const debugInfo = debug ? { hookGrowth: Object.entries(hookTotals).sort((a, b) => b[1].growthKiB - a[1].growthKiB).map(([hook, t]) => ({ hook, ...t })), mappingGrowth: growth } : {};
writeFileSync(path.join(out, 'soak.json'), JSON.stringify({ verdict, samples, ...debugInfo }, null, 2));
console.log(JSON.stringify(verdict));
process.exit(verdict.pass ? 0 : 1);
