/**
 * The multi-threaded WASM build in Node. The 'wasm' backend is one per process, so each thread
 * count runs in a child process on the built bundle and prints what it computed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { requireOrSkip, whenDnnlOff } from '../../../tools/testing/require-or-skip.js';

const require = createRequire(import.meta.url);
const bundle = require.resolve('@kiln/backend-cpu');
const core = require.resolve('@kiln/core');

// A convolution and its gradients plus a matrix product, large enough for XNNPACK to split work
// across threads; prints the thread count and the values.
const script = `
const { tf } = require(${JSON.stringify(core)});
const { wasmBackend } = require(${JSON.stringify(bundle)});
(async () => {
  const b = wasmBackend();
  await b.init();
  const r = (shape, k) => tf.tensor(Float32Array.from({ length: shape.reduce((a, c) => a * c) }, (_, i) => Math.sin(i * k)), shape);
  const x = r([8, 20, 20, 16], 0.37), w = r([3, 3, 16, 32], 0.11), a = r([300, 200], 0.21), m = r([200, 150], 0.05);
  const [dx, dw] = tf.grads((x, w) => tf.sum(tf.square(tf.conv2d(x, w, 1, 'same'))))([x, w]);
  const out = [tf.conv2d(x, w, 1, 'same'), dx, dw, tf.matMul(a, m)].map((t) => Array.from(t.dataSync()));
  const d = b.describe().details;
  console.log(JSON.stringify({ threads: d.threads, dnnlThreads: d.dnnlThreads, out }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

function run(env: Record<string, string>): { threads: number; dnnlThreads: number; out: number[][] } {
  const stdout = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 28 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

const { loadDnnl } = require(bundle) as typeof import('../src/index.js');

describe('multi-threaded WASM in Node', () => {
  it('starts the threaded build with KILN_NUM_THREADS=2 and computes what one thread computes', () => {
    const one = run({ KILN_NUM_THREADS: '1', KILN_DNNL: '0' });
    const two = run({ KILN_NUM_THREADS: '2', KILN_DNNL: '0' });
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(two.dnnlThreads).toBe(0);
    expectSameValues(one, two);
  }, 120_000);

  it('with oneDNN, gives the threads to oneDNN and computes what one thread computes', (ctx) => {
    const dnnl = loadDnnl();
    requireOrSkip(ctx, !dnnl.loaded && `oneDNN kernels not loaded: ${dnnl.reason}`, whenDnnlOff);
    const one = run({ KILN_NUM_THREADS: '1' });
    const two = run({ KILN_NUM_THREADS: '2' });
    expect([one.threads, one.dnnlThreads]).toEqual([1, 1]);
    expect([two.threads, two.dnnlThreads]).toEqual([1, 2]);
    expectSameValues(one, two);
  }, 120_000);

  /**
   * XNNPACK splits output tiles between threads, so its results do not change with the thread
   * count. oneDNN may also split a filter gradient's sum over the batch (its AVX-512 kernels do;
   * measured: 1.4e-6 relative between one and two threads, AVX2: identical), and two orders of a
   * float32 sum of n = 8·20·20 = 3,200 terms differ by about u·√n ≈ 3.4e-6 of its partial sums
   * (u = 2⁻²⁴). Hence 1e-5, relative to max(1, |value|).
   */
  function expectSameValues(one: { out: number[][] }, two: { out: number[][] }): void {
    expect(two.out.length).toBe(one.out.length);
    two.out.forEach((values, i) => {
      expect(values.length).toBe(one.out[i].length);
      let worst = 0;
      for (let j = 0; j < values.length; j++) worst = Math.max(worst, Math.abs(values[j] - one.out[i][j]) / Math.max(1, Math.abs(one.out[i][j])));
      expect(worst).toBeLessThanOrEqual(1e-5);
    });
  }

  it('refuses a KILN_NUM_THREADS that is not a positive integer, naming the variable', () => {
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, KILN_NUM_THREADS: 'two' }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/KILN_NUM_THREADS must be a positive integer, got 'two'/);
  }, 60_000);
});
