/**
 * Shared by the oneDNN convolution tests: the two backends and the hooks that start them, seeded
 * data, and the largest difference between what the WASM backend (with the addon) computes and
 * what the reference CPU backend computes.
 */
import { createRequire } from 'node:module';
import { beforeAll, beforeEach } from 'vitest';
import { requireOrSkip, whenDnnlOff } from '../../../tools/testing/require-or-skip.js';

const require = createRequire(import.meta.url);
const { tf } = require('@kiln/core') as typeof import('@kiln/core');
const { wasmBackend, cpuBackend, loadDnnl } = require('@kiln/backend-cpu') as typeof import('../src/index.js');
type Tensor = import('@kiln/core').Tensor;

/**
 * The WASM backend, the reference CPU backend and the addon's status for a test file of the addon's
 * kernels: registers the hooks that start WASM before the tests and skip each test (as allowed
 * under KILN_DNNL=0) when the addon did not load.
 */
export function dnnlSuite() {
  const wasm = wasmBackend();
  const cpu = cpuBackend();
  const dnnl = loadDnnl();
  beforeAll(async () => {
    await wasm.init();
  }, 60_000);
  beforeEach((ctx) => requireOrSkip(ctx, !dnnl.loaded && `oneDNN kernels not loaded: ${dnnl.reason}`, whenDnnlOff));
  return { wasm, cpu, dnnl };
}

/** Deterministic values in [-1, 1) times `scale` (a linear congruential sequence from `seed`). */
export function seededTensor(shape: number[], seed: number, scale = 1): Tensor {
  let s = seed;
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s / 2 ** 31 - 1) * scale;
  }
  return tf.tensor(v, shape);
}

/**
 * Runs `fn` on `wasm`, then on `cpu`, and returns each output's largest absolute difference
 * between the two; `wasm` is the active backend again afterwards.
 */
export async function differencesFromCpu(fn: () => Tensor[], wasm: { init(): Promise<unknown> }, cpu: { init(): Promise<unknown> }): Promise<number[]> {
  const run = () => {
    const outs = tf.tidy(fn);
    const values = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
    return values;
  };
  const onWasm = run();
  await cpu.init();
  const onCpu = run();
  await wasm.init();
  return onWasm.map((w, i) => {
    if (w.length !== onCpu[i].length) throw new Error(`output ${i}: ${w.length} values on wasm, ${onCpu[i].length} on cpu`);
    let worst = 0;
    for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(w[j] - onCpu[i][j]));
    return worst;
  });
}
