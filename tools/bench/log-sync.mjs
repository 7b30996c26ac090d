#!/usr/bin/env node
// What a host read per step costs: the same small training run through the Trainer two ways,
// side by side in one process, rounds alternating.
//   kept:   logged values stay on the device; nothing consumes step values (a logger logs every
//           50 steps, as by default), so the step makes no host read.
//   forced: a callback reads each logged value of every step with `await tensor.data()`, which is
//           exactly what the trainer did for every run before `log` (MetricAverager).
//   control: the same asynchronous callback without the reads, so that forced - control is the
//           cost of the reads alone (an async callback shifts the loop's timing by itself).
// The gap is largest where a read waits for the device's queue to drain: WebGPU. In Node WebGPU
// runs on Dawn; without a GPU, on SwiftShader (Debian's chromium ships it):
//   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json XDG_RUNTIME_DIR=/tmp \
//     node tools/bench/log-sync.mjs [--backend webgpu|wasm] [--model mlp|lenet] [--rounds 3] [--steps 20] [--batch 32]
// Prints ms per step (median of rounds) for each way, forced/kept, and one JSON line.
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

// The CommonJS bundles, so that core's engine and the backend are one tfjs instance.
const require = createRequire(import.meta.url);
const { tf, manualSeed } = require('@kiln/core');
const { ArrayDataset, DataLoader } = require('@kiln/data');
const { LeNet5 } = require('@kiln/zoo');
const { Flatten, Linear, ReLU, Sequential } = require('@kiln/layers');
const { SGD } = require('@kiln/optim');
const { ClassificationModule, Trainer } = require('@kiln/trainer');

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '20' },
    batch: { type: 'string', default: '32' },
    model: { type: 'string', default: 'mlp' },
  },
});
const rounds = Number(values.rounds);
const steps = Number(values.steps);
const batch = Number(values.batch);

if (values.backend === 'webgpu') {
  const plugin = require('@kiln/backend-webgpu').webgpuBackend();
  const a = await plugin.availability();
  if (!a.available) throw new Error(`WebGPU unavailable: ${a.reason} (${a.install})`);
  await plugin.init();
} else {
  await require('@kiln/backend-cpu').wasmBackend().init();
}

// Random 28×28 images, 10 classes: the data's values do not matter to the timing.
const n = steps * batch;
const x = new Float32Array(n * 28 * 28).map(() => Math.random());
const y = Int32Array.from({ length: n }, (_, i) => i % 10);
const dataset = new ArrayDataset(x, y, [28, 28, 1]);

/** The old per-step read, value by value. */
const forcedReads = {
  async onTrainBatchEnd(_t, _m, out) {
    for (const v of Object.values(out.logs)) await v.data();
  },
};
/** The same callback shape without the reads: what an asynchronous callback costs by itself. */
const control = {
  async onTrainBatchEnd() {
    await Promise.resolve();
  },
};
const quietLogger = { name: 'quiet', logMetrics() {} };

async function msPerStep(way) {
  manualSeed(0);
  const net = values.model === 'lenet' ? new LeNet5({ numClasses: 10, inChannels: 1 }) : new Sequential(new Flatten(), new Linear({ inFeatures: 784, outFeatures: 128 }), new ReLU(), new Linear({ inFeatures: 128, outFeatures: 10 }));
  const module = new ClassificationModule(net, { optimizer: (m) => new SGD(m.trainableVariables(), { lr: 0.01 }) });
  const callbacks = { kept: [], control: [control], forced: [forcedReads] }[way];
  const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, logEveryNSteps: 50 }, callbacks, [quietLogger]);
  const loader = new DataLoader(dataset, { batchSize: batch });
  // The epoch ends with one read of the epoch's values either way, which also waits for the queue.
  const t0 = performance.now();
  await trainer.fit(module, loader);
  const ms = (performance.now() - t0) / steps;
  trainer.optimizerConfig.optimizer.dispose();
  module.model.dispose?.();
  return ms;
}

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
await msPerStep('kept'); // warm-up: shader compilation, kernel caches
const times = { kept: [], control: [], forced: [] };
// The order of the ways rotates each round, so a drift in machine load favours none.
const ways = ['kept', 'control', 'forced'];
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < ways.length; i++) {
    const way = ways[(i + r) % ways.length];
    times[way].push(await msPerStep(way));
  }
}
const kept = median(times.kept);
const ctl = median(times.control);
const forced = median(times.forced);
const result = { backend: tf.getBackend(), model: values.model, steps, batch, rounds, keptMsPerStep: kept, controlMsPerStep: ctl, forcedMsPerStep: forced, ratio: forced / kept, readCostMsPerStep: forced - ctl, tensorsLeft: tf.memory().numTensors };
console.log(`backend ${result.backend}, ${values.model === 'lenet' ? 'LeNet-5' : 'MLP 784-128-10'}, batch ${batch}, ${steps} steps, median of ${rounds} rounds`);
console.log(`values kept on the device:      ${kept.toFixed(2)} ms/step`);
console.log(`async callback, no read:        ${ctl.toFixed(2)} ms/step`);
console.log(`read every step (before):       ${forced.toFixed(2)} ms/step`);
console.log(`forced / kept:                  ${result.ratio.toFixed(3)}`);
console.log(`the reads alone (forced - ctl): ${result.readCostMsPerStep.toFixed(2)} ms/step`);
console.log(JSON.stringify(result));
