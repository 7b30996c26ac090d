/**
 * Max pooling that keeps its argmax (@kiln/core's `MAX_POOL_ARGMAX_KERNEL` and its gradient) on
 * 'wasm', through the addon's C++ loops and through the JavaScript ones that run without it: y,
 * argmax and dx against PyTorch's `max_pool2d(..., return_indices=True)` on inputs full of ties
 * (tools/fixtures/layers/gen_max_pool_argmax.py), the two implementations bit for bit against each
 * other on a larger input, dx against tfjs's own max-pool gradient on the reference 'cpu' backend,
 * and the typed errors.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireOrSkip, whenDnnlOff } from '../../../tools/testing/require-or-skip.js';

const require = createRequire(import.meta.url);
const core = require('@kiln/core') as typeof import('@kiln/core');
const { tf, MAX_POOL_ARGMAX_KERNEL: FORWARD, MAX_POOL_ARGMAX_GRAD_KERNEL: GRAD } = core;
const { wasmBackend, cpuBackend, registerWasmTrainingKernels, loadDnnl, dnnlCallCounts } = require('@kiln/backend-cpu') as typeof import('../src/index.js');
type Tensor = import('@kiln/core').Tensor;
type Tensor4D = import('@kiln/core').tf.Tensor4D;
type Attrs = import('@kiln/core').tf.NamedAttrMap;

interface Fx {
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  kernelSize: number | [number, number];
  stride: number | [number, number];
  padding: number | [number, number];
  x: Fx;
  y: Fx;
  indices: Fx;
  cot: Fx;
  g_x: Fx;
}
const fixtures = JSON.parse(readFileSync(fileURLToPath(new URL('../../../tools/fixtures/layers/max-pool-argmax.json', import.meta.url)), 'utf8')).cases as Case[];

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
/** NCHW → NHWC, as plain numbers. */
function nhwc(f: Fx): { shape: [number, number, number, number]; data: number[] } {
  const [n, c, h, w] = f.shape;
  const data: number[] = [];
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data.push(f.data[((i * c + k) * h + y) * w + x]);
  return { shape: [n, h, w, c], data };
}

/** Runs the forward kernel and then its gradient for `cot`; plain arrays out. */
function run(x: Tensor, attrs: Record<string, unknown>, cot?: Tensor): { y: Float32Array; argmax: Int32Array; dx?: Float32Array } {
  const [y, argmax] = tf.engine().runKernel(FORWARD, { x }, attrs as Attrs) as Tensor[];
  const out = { y: y.dataSync() as Float32Array, argmax: argmax.dataSync() as Int32Array, dx: undefined as Float32Array | undefined };
  if (cot) {
    const dx = tf.engine().runKernel(GRAD, { dy: cot, argmax }, { inputShape: x.shape }) as Tensor;
    out.dx = dx.dataSync() as Float32Array;
    dx.dispose();
  }
  tf.dispose([y, argmax]);
  return out;
}

function attrsOf(c: Case, x: { shape: number[] }): Record<string, unknown> {
  const [, , oh, ow] = c.y.shape;
  return { filterSize: pair(c.kernelSize), strides: pair(c.stride), pad: pair(c.padding), outShape: [oh, ow], inputShape: x.shape };
}

/** Deterministic values with many ties: integers in [-2, 2] through a ReLU, so about half are 0. */
function tied(shape: number[], seed: number): Tensor {
  let s = seed >>> 0 || 1;
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = Math.max(0, (s >>> 24) % 5 - 2);
  }
  return tf.tensor(v, shape);
}

const dnnlLoaded = loadDnnl().loaded;

beforeAll(async () => {
  await wasmBackend().init();
}, 60_000);
afterAll(() => registerWasmTrainingKernels());

describe.each(dnnlLoaded ? [true, false] : [false])('max pooling with its argmax on wasm (oneDNN addon: %s)', (dnnl) => {
  let before: ReturnType<typeof dnnlCallCounts>;
  beforeAll(() => {
    registerWasmTrainingKernels({ dnnl });
    before = dnnlCallCounts();
  });
  afterAll(() => {
    // With the addon every call ran its C++ loops; without it none did.
    const ran = (dnnlCallCounts()[FORWARD]?.native ?? 0) - (before[FORWARD]?.native ?? 0);
    expect(ran > 0).toBe(dnnl);
  });

  for (const c of fixtures) {
    it(`${c.name}: y, argmax and dx match PyTorch (first maximum wins ties)`, () => {
      const xs = nhwc(c.x);
      const x = tf.tensor(xs.data, xs.shape);
      const cot = tf.tensor(nhwc(c.cot).data, nhwc(c.cot).shape);
      const got = run(x, attrsOf(c, xs), cot);
      expect(Array.from(got.y)).toEqual(nhwc(c.y).data);
      // PyTorch's index h·W + w within a channel's plane is (h·W + w)·C + c within an NHWC image.
      const C = c.x.shape[1];
      const [, , OH, OW] = c.y.shape;
      const idx = nhwc(c.indices);
      const want = idx.data.map((v, i) => v * C + (i % C));
      expect(Array.from(got.argmax)).toEqual(want);
      expect(want.length).toBe(c.y.shape[0] * OH * OW * C);
      expect(Array.from(got.dx!)).toEqual(nhwc(c.g_x).data);
      tf.dispose([x, cot]);
    });
  }

  it('dx equals tfjs maxPool gradient on the reference cpu backend (LeNet-5 and AlexNet pools, ties)', async () => {
    for (const [shape, k, s] of [
      [[4, 28, 28, 6], 2, 2],
      [[2, 13, 13, 8], 3, 2],
    ] as const) {
      const [n, h, w, c] = shape;
      const oh = Math.floor((h - k) / s) + 1;
      const ow = Math.floor((w - k) / s) + 1;
      const x = tied([...shape], 5);
      const cot = tied([n, oh, ow, c], 6);
      const got = run(x, { filterSize: [k, k], strides: [s, s], pad: [0, 0], outShape: [oh, ow], inputShape: shape }, cot);
      const xv = x.dataSync().slice();
      const cv = cot.dataSync().slice();
      tf.dispose([x, cot]);
      await cpuBackend().init();
      const ref = tf.tidy(() => {
        const xr = tf.tensor(xv, [...shape]) as Tensor4D;
        const cr = tf.tensor(cv, [n, oh, ow, c]);
        const f = (v: Tensor) => tf.sum(tf.mul(tf.maxPool(v as Tensor4D, k, s, 'valid'), cr));
        return [tf.maxPool(xr, k, s, 'valid').dataSync(), tf.grad(f)(xr).dataSync()];
      });
      await wasmBackend().init();
      registerWasmTrainingKernels({ dnnl });
      expect(Array.from(got.y)).toEqual(Array.from(ref[0]));
      // Both add the same few values per cell; only their order may differ.
      let worst = 0;
      for (let i = 0; i < ref[1].length; i++) worst = Math.max(worst, Math.abs(got.dx![i] - ref[1][i]));
      expect(worst, `[${shape}] k${k} s${s}`).toBeLessThanOrEqual(1e-6);
    }
  });

  it('rejects a malformed call with a typed error naming the argument', () => {
    const x = tf.zeros([1, 4, 4, 2]);
    const ok = { filterSize: [2, 2], strides: [2, 2], pad: [0, 0], outShape: [2, 2], inputShape: [1, 4, 4, 2] };
    const call = (attrs: Record<string, unknown>, input: Tensor = x) => () => tf.engine().runKernel(FORWARD, { x: input }, attrs as Attrs);
    expect(call({ ...ok, pad: [2, 0] })).toThrow(core.ConfigError);
    expect(call({ ...ok, outShape: [4, 2] })).toThrow(/outShape/);
    expect(call({ ...ok, inputShape: [1, 4, 4, 3] })).toThrow(core.ShapeMismatchError);
    expect(call(ok, tf.zeros([4, 4, 2]))).toThrow(core.ShapeMismatchError);
    const dy = tf.zeros([1, 2, 2, 2]);
    const bad = tf.tensor([0, 1, 2, 99, 0, 0, 0, 0], [1, 2, 2, 2], 'int32');
    expect(() => tf.engine().runKernel(GRAD, { dy, argmax: bad }, { inputShape: [1, 4, 4, 2] })).toThrow(/argmax/);
    expect(() => tf.engine().runKernel(GRAD, { dy, argmax: tf.zeros([1, 2, 2, 2]) }, { inputShape: [1, 4, 4, 2] })).toThrow(core.ShapeMismatchError);
    tf.dispose([x, dy, bad]);
  });
});

describe('the C++ and JavaScript loops agree bit for bit', () => {
  it('y, argmax and dx on a ResNet-stem-like pool with padding, and on LeNet-5 sizes', (ctx) => {
    requireOrSkip(ctx, !dnnlLoaded && `oneDNN addon not loaded: ${(loadDnnl() as { reason?: string }).reason}`, whenDnnlOff);
    for (const [shape, k, s, p] of [
      [[2, 20, 18, 64], 3, 2, 1],
      [[64, 28, 28, 6], 2, 2, 0],
      [[64, 10, 10, 16], 2, 2, 0],
      [[3, 9, 9, 5], 3, 1, 1],
    ] as const) {
      const [, h, w] = shape;
      const oh = Math.floor((h + 2 * p - k) / s) + 1;
      const ow = Math.floor((w + 2 * p - k) / s) + 1;
      const attrs = { filterSize: [k, k], strides: [s, s], pad: [p, p], outShape: [oh, ow], inputShape: shape };
      const x = tf.sub(tied([...shape], 7), 1);
      const cot = tied([shape[0], oh, ow, shape[3]], 8);
      registerWasmTrainingKernels({ dnnl: true });
      const native = run(x, attrs, cot);
      registerWasmTrainingKernels({ dnnl: false });
      const js = run(x, attrs, cot);
      expect(native.y).toEqual(js.y);
      expect(native.argmax).toEqual(js.argmax);
      expect(native.dx).toEqual(js.dx);
      tf.dispose([x, cot]);
    }
    registerWasmTrainingKernels();
  });
});
