// One measured configuration, run in its own process by run.mjs so that peak RSS is its own.
// Usage: node tools/bench/worker.mjs '<json>' with {framework, model, backend, threads, steps,
// warmup, inferBatches, layersBundle, imageFolder, data, decodeWorkers}. Prints one line `RESULT {...}`.
//
// Training data: Fashion-MNIST from memory, or with `imageFolder` (a folder of 28×28 images, see
// image-folder.mjs) either decoded lazily from disk every step (`data: 'folder'`, no cache) or the
// same folder decoded once into memory first (`data: 'memory'`).
//
// framework:
//   kiln         Kiln's Trainer.fit with ClassificationModule (Adam, cross-entropy, accuracy)
//   bare         the same model, loss, accuracy and Adam in a hand-written tf.variableGrads loop
//   tfjs-layers  the same architecture as a tfjs-layers model, trained with model.fit
import { readFileSync } from 'node:fs';
import { tf, manualSeed } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader, FASHION_MNIST_CLASSES, imageFolder, locateFashionMnist, readIdxFile } from '@kiln/data';
import { crossEntropy } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { ClassificationModule, accuracy, callback, createTrainer } from '@kiln/trainer';
import { kilnModel, layersModel } from './models.mjs';

const cfg = JSON.parse(process.argv[2]);
const BATCH = 64;

// 'wasm+onednn': the default (convolutions, max-pool gradients and matrix products in oneDNN);
// 'wasm': the same backend with every kernel in WebAssembly/JavaScript.
const onWasm = cfg.backend === 'wasm' || cfg.backend === 'wasm+onednn';
if (onWasm) process.env.KILN_NUM_THREADS = String(cfg.threads);
const backend = onWasm ? wasmBackend({ dnnl: cfg.backend === 'wasm+onednn' }) : cpuBackend();
await backend.init();
manualSeed(0);

async function trainingData() {
  if (!cfg.imageFolder) return firstExamples((cfg.warmup + cfg.steps) * BATCH);
  const folder = await imageFolder(cfg.imageFolder, { size: [28, 28], channels: 1, cacheBytes: 0, workers: cfg.decodeWorkers });
  if (cfg.data === 'folder') return folder.train;
  const inMemory = await folder.train.materialize();
  folder.close();
  return inMemory;
}
/**
 * The first `n` Fashion-MNIST training examples, converted to float32 and nothing more, as
 * torch_bench.py does (`fashionMnist('train').take(n)` converts all 60,000 images, 188 MB of
 * float32 that the taken view keeps alive: memory PyTorch's side never holds).
 */
async function firstExamples(n) {
  const files = await locateFashionMnist();
  const images = readIdxFile(files['train-images']);
  const labels = readIdxFile(files['train-labels']);
  const [, h, w] = images.shape;
  const x = Float32Array.from(images.data.subarray(0, n * h * w), (v) => v / 255);
  return new ArrayDataset(x, Int32Array.from(labels.data.subarray(0, n)), [h, w, 1], FASHION_MNIST_CLASSES);
}
const train = await trainingData();
const loader = () => new DataLoader(train, { batchSize: BATCH, shuffle: false });
const now = () => performance.now();
/**
 * CPU seconds of the thread running the step. With one compute thread that is all the step's
 * compute (WASM, and oneDNN's one OpenMP thread is the calling thread), and unlike wall time it
 * does not count the time other processes hold the core, nor V8's helper threads (GC), which run
 * beside the step on an idle machine. Linux's per-thread schedstat (ns); elsewhere the process's time.
 */
const mainThread = `/proc/self/task/${process.pid}/schedstat`;
const cpuSec = () => {
  try {
    return Number(readFileSync(mainThread, 'utf8').split(' ')[0]) / 1e9;
  } catch {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
};

/** Times `batches` forward passes in inference mode (no gradient, eval-mode batch norm). */
function inference(forward, batches) {
  const x = tf.randomUniform([BATCH, 28, 28, 1]);
  const run = () => tf.tidy(() => forward(x).dataSync());
  run();
  const t0 = now();
  const c0 = cpuSec();
  for (let i = 0; i < batches; i++) run();
  const dt = (now() - t0) / 1000;
  inferCpu = cpuSec() - c0;
  x.dispose();
  return (batches * BATCH) / dt;
}

let trainTime;
let trainCpu;
let inferCpu;
let inferSps;

if (cfg.framework === 'kiln') {
  const model = kilnModel(cfg.model);
  const module = new ClassificationModule(model, { lr: 1e-3 });
  let tStart;
  let tEnd;
  let cStart;
  const timer = {
    onTrainBatchEnd(_t, _m, _o, _b, i) {
      if (i === cfg.warmup - 1) [tStart, cStart] = [now(), cpuSec()];
      if (i === cfg.warmup + cfg.steps - 1) [tEnd, trainCpu] = [now(), cpuSec() - cStart];
    },
  };
  const trainer = createTrainer({ maxEpochs: 1, numSanityValSteps: 0, enableProgressBar: false, plugins: [callback(timer)] });
  await trainer.fit(module, loader());
  trainTime = (tEnd - tStart) / 1000;
  model.eval();
  inferSps = inference((x) => model.forward(x), cfg.inferBatches);
} else if (cfg.framework === 'bare') {
  const model = kilnModel(cfg.model);
  const vars = model.trainableVariables();
  const opt = new Adam(vars, { lr: 1e-3 });
  model.train();
  let i = 0;
  let tStart;
  let cStart;
  for (const batch of loader()) {
    if (i === cfg.warmup) [tStart, cStart] = [now(), cpuSec()];
    // The same work per step as ClassificationModule under the Trainer: loss and accuracy, both
    // read back to the host.
    let acc;
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.forward(batch.x);
      acc = tf.keep(accuracy(logits, batch.y));
      return crossEntropy(logits, batch.y);
    }, vars);
    opt.step(grads);
    value.dataSync();
    acc.dataSync();
    tf.dispose([value, acc, grads]);
    batch.x.dispose();
    batch.y.dispose();
    i++;
  }
  trainTime = (now() - tStart) / 1000;
  trainCpu = cpuSec() - cStart;
  model.eval();
  inferSps = inference((x) => model.forward(x), cfg.inferBatches);
} else if (cfg.framework === 'tfjs-layers') {
  const tfl = await import(cfg.layersBundle);
  const model = layersModel(tfl, cfg.model);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const batches = [...loader()];
  const xs = tf.concat(batches.map((b) => b.x));
  const ys = tf.cast(tf.concat(batches.map((b) => b.y)), 'float32');
  tf.dispose(batches.flatMap((b) => [b.x, b.y]));
  const warmN = cfg.warmup * BATCH;
  const [xw, xt] = [xs.slice(0, warmN), xs.slice(warmN)];
  const [yw, yt] = [ys.slice(0, warmN), ys.slice(warmN)];
  await model.fit(xw, yw, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  const t0 = now();
  const c0 = cpuSec();
  await model.fit(xt, yt, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  trainTime = (now() - t0) / 1000;
  trainCpu = cpuSec() - c0;
  inferSps = inference((x) => model.predict(x), cfg.inferBatches);
} else {
  throw new Error(`unknown framework '${cfg.framework}'`);
}

const result = {
  ...cfg,
  main_thread_busy: performance.eventLoopUtilization().utilization,
  device: backend.describe().device,
  train_samples_per_sec: (cfg.steps * BATCH) / trainTime,
  infer_samples_per_sec: inferSps,
  // Per CPU-second of the stepping thread: comparable across runs that saw different machine load
  // (at one compute thread; see cpuSec).
  train_samples_per_cpu_sec: (cfg.steps * BATCH) / trainCpu,
  infer_samples_per_cpu_sec: (cfg.inferBatches * BATCH) / inferCpu,
  peak_rss_mib: process.resourceUsage().maxRSS / 1024,
};
console.log('RESULT ' + JSON.stringify(result));
