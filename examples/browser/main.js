// Training in the browser with the same Trainer as in Node: Kiln's packages bundled by any bundler
// (their `browser` builds: no Node built-ins), a backend chosen from plugins, a callback, and a
// checkpoint written to IndexedDB. `run.mjs` bundles this file with esbuild and opens it in Chromium.
import { tf } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader } from '@kiln/data';
import { Adam } from '@kiln/optim';
import { ClassificationModule, IndexedDbStorage, ModelCheckpoint, callback, createTrainer } from '@kiln/trainer';
import { LeNet5 } from '@kiln/zoo';

const log = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};

/** 28×28 images whose class is the row of a bright bar, with noise. */
function bars(n, seed) {
  let s = seed;
  const random = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 10;
    for (let col = 2; col < 26; col++) x[i * 784 + (3 + 2 * y[i]) * 28 + col] = 1;
    for (let p = 0; p < 784; p++) x[i * 784 + p] += 0.2 * random();
  }
  return new ArrayDataset(x, y, [28, 28, 1]);
}

/** A callback of the page's own: one line per epoch (after validation), and the losses it saw. */
const losses = [];
const epochLines = {
  onTrainEpochEnd(trainer) {
    const m = trainer.callbackMetrics;
    losses.push(m.train_loss);
    log(`epoch ${trainer.currentEpoch + 1}: train_loss ${m.train_loss.toFixed(3)} val_acc ${m.val_acc.toFixed(3)}`);
  },
};

async function main() {
  const storage = new IndexedDbStorage({ database: 'kiln-browser-example' });
  const trainer = createTrainer({
    maxEpochs: 4,
    seed: 1,
    numSanityValSteps: 0,
    storage,
    // The .wasm files are served beside the page (run.mjs copies them; a Vite app puts them in public/).
    plugins: [wasmBackend({ wasmPaths: './' }), cpuBackend(), callback(epochLines), callback(new ModelCheckpoint({ dirpath: 'checkpoints', monitor: 'val_loss', saveLast: true }))],
  });
  await trainer.selectAccelerator();
  const { name, info } = trainer.accelerator;
  log(`backend: ${name} — ${info.device}`);
  const module = new ClassificationModule(new LeNet5(), { optimizer: (m) => new Adam(m.trainableVariables(), { lr: 3e-3 }) });
  const train = new DataLoader(bars(320, 1), { batchSize: 32, shuffle: true, seed: 1 });
  const val = new DataLoader(bars(100, 2), { batchSize: 50 });
  await trainer.fit(module, train, val);
  const acc = trainer.callbackMetrics.val_acc;
  const saved = await storage.list('checkpoints');
  log(`checkpoints in IndexedDB: ${saved.join(', ')}`);
  if (!(acc > 0.5)) throw new Error(`validation accuracy ${acc} after 4 epochs of a separable task`);
  if (!(losses.at(-1) < losses[0])) throw new Error(`the training loss did not fall: ${losses.join(' → ')}`);
  if (!saved.includes('last.ckpt')) throw new Error('no last.ckpt in IndexedDB');
  document.title = `done: ${name}, val_acc ${acc.toFixed(3)}, train_loss ${losses[0].toFixed(3)} → ${losses.at(-1).toFixed(3)}, tensors ${tf.memory().numTensors}`;
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  document.title = `error: ${e?.message ?? e}`;
});
