// A training loop in the browser: Kiln's browser-safe packages (core, layers, optim, zoo and the
// CPU backends) bundled by any bundler; `run.mjs` bundles this file with esbuild and opens it in
// Chromium. The Trainer and the data readers are Node packages; a page writes its own short loop.
import { BackendRegistry, tf } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { crossEntropy } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { LeNet5 } from '@kiln/zoo';

const log = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};

/** 28×28 images whose class is the row of a bright bar. */
function bars(n) {
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 10;
    for (let col = 2; col < 26; col++) x[i * 784 + (3 + 2 * y[i]) * 28 + col] = 1;
    for (let p = 0; p < 784; p++) x[i * 784 + p] += 0.2 * Math.random();
  }
  return { x: tf.tensor4d(x, [n, 28, 28, 1]), y: tf.tensor1d(y, 'int32') };
}

async function main() {
  // The .wasm files are served beside the page (run.mjs copies them; a Vite app puts them in public/).
  const { name, info } = await new BackendRegistry([wasmBackend({ wasmPaths: './' }), cpuBackend()]).use('auto');
  log(`backend: ${name} — ${info.device}`);
  const model = new LeNet5();
  const optimizer = new Adam(model.trainableVariables(), { lr: 3e-3 });
  const { x, y } = bars(64);
  const losses = [];
  for (let step = 0; step < 15; step++) {
    const { value, grads } = tf.variableGrads(() => crossEntropy(model.forward(x), y), model.trainableVariables());
    losses.push((await value.data())[0]);
    optimizer.step(grads);
    tf.dispose([value, ...Object.values(grads)]);
    log(`step ${step}: loss ${losses.at(-1).toFixed(3)}`);
  }
  tf.dispose([x, y]);
  if (!(losses.at(-1) < losses[0])) throw new Error(`loss did not fall: ${losses[0]} → ${losses.at(-1)}`);
  document.title = `done: ${name}, loss ${losses[0].toFixed(3)} → ${losses.at(-1).toFixed(3)}`;
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  document.title = `error: ${e?.message ?? e}`;
});
