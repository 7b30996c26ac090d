/**
 * Kiln's WASM training kernels, checked against tfjs's reference CPU backend: the same gradient
 * is computed on 'wasm' and on 'cpu' and must agree to 1e-4.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireOrSkip, whenDnnlOff } from '../../../tools/testing/require-or-skip.js';

// The built CommonJS bundle: its tfjs-core is the one engine @kiln/core's CommonJS entry holds.
// (The ESM bundle cannot start the WASM module in Node yet — tfjs's emscripten glue reads
// `__dirname` — and the sources cannot run unbundled, since tfjs's ESM dist is not Node ESM.)
const require = createRequire(import.meta.url);
const { tf } = require('@kiln/core') as typeof import('@kiln/core');
const { wasmBackend, cpuBackend, registerWasmTrainingKernels, loadDnnl, dnnlCallCounts } = require('@kiln/backend-cpu') as typeof import('../src/index.js');

type Tensor = import('@kiln/core').Tensor;
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
type Pair = number | [number, number];

/**
 * Largest |wasm − cpu| allowed. Both compute the same float32 sums in different orders (oneDNN's
 * AVX-512 or AVX2 blocking, XNNPACK's, the reference backend's straight loops), and two orders of
 * a sum of n random-sign terms differ by about u·√n times its partial sums (u = 2⁻²⁴): ≈ 7e-6 for
 * the largest sums here (n = 12,800, kept of order one by `cotangent`), and 1e-5 on the unscaled
 * dense-layer products, whose values reach 31. Measured worst on AVX-512, AVX2 and without oneDNN:
 * 1.7e-5 (matMul 64×400·400×120). An indexing or padding error shows at order one.
 */
const TOLERANCE = 1e-4;
const wasm = wasmBackend();
const cpu = cpuBackend();

beforeAll(async () => {
  await wasm.init();
}, 60_000);

/** Deterministic uniform values in [-1, 1) so a failure reproduces. */
function seeded(size: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function random(shape: number[], seed: number): Tensor {
  return tf.tensor(seeded(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/**
 * A random output gradient, scaled by 1/sqrt(N·OH·OW) as a mean loss scales it, so that a filter
 * gradient (a sum over every output position) stays of order one. Both backends then differ only
 * by float32 rounding (~1e-6 relative), while an indexing error would show at order one.
 */
function cotangent(shape: number[], seed: number): Tensor {
  const positions = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return tf.tidy(() => random(shape, seed).mul(1 / Math.sqrt(positions)));
}

/** Runs `fn` on wasm, then on cpu, and returns each run's outputs as arrays (wasm is left active). */
async function onBothBackends(fn: () => Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const run = () => {
    const outs = tf.tidy(fn);
    const values = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
    return values;
  };
  await wasm.init();
  const onWasm = run();
  await cpu.init();
  const onCpu = run();
  await wasm.init();
  return { wasm: onWasm, cpu: onCpu };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectSame(r: { wasm: Float32Array[]; cpu: Float32Array[] }): void {
  expect(r.wasm.length).toBe(r.cpu.length);
  r.wasm.forEach((w, i) => expect(maxAbsDiff(w, r.cpu[i])).toBeLessThanOrEqual(TOLERANCE));
}

const pair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : p);

/** Output shape of a (depthwise when `depthwise`) convolution, from tfjs's own arithmetic. */
function outShape(x: number[], f: number[], strides: Pair, dilations: Pair, pad: Pad, depthwise: boolean): number[] {
  const c = tf.backend_util.computeConv2DInfo(x as [number, number, number, number], f as [number, number, number, number], strides, dilations, pad, undefined, depthwise);
  return c.outShape;
}

/** The filter a dilated convolution effectively applies: zeros between the taps. */
function dilatedFilter(f: Tensor, [dh, dw]: [number, number]): Tensor {
  const [kh, kw, a, b] = f.shape;
  const src = f.dataSync();
  const eff = tf.buffer([(kh - 1) * dh + 1, (kw - 1) * dw + 1, a, b], 'float32');
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let p = 0; p < a; p++) for (let q = 0; q < b; q++) {
    eff.set(src[((i * kw + j) * a + p) * b + q], i * dh, j * dw, p, q);
  }
  return eff.toTensor();
}

/** Every dh-th row and dw-th column of a filter-shaped gradient: undoes `dilatedFilter`. */
function taps(g: Tensor, [dh, dw]: [number, number]): Tensor {
  return tf.stridedSlice(g, [0, 0, 0, 0], g.shape, [dh, dw, 1, 1]);
}

// Convolutions, max-pool gradients and matrix products run through oneDNN when the native addon
// is built, else in JavaScript around XNNPACK; both paths are checked whenever both exist.
const dnnl = loadDnnl();
const dnnlBuilt = dnnl.loaded;
const dnnlMissing = !dnnl.loaded && `oneDNN kernels not loaded: ${dnnl.reason}`;
const convModes = dnnlBuilt ? [true, false] : [false];
/**
 * Registers the kernels with oneDNN on or off for one describe block, and checks afterwards that
 * with it on every call ran natively except `handedBack` (calls the block makes on purpose with
 * inputs oneDNN declines, such as NCHW), and with it off none did.
 */
function useNativeKernels(dnnl: boolean, handedBack: Record<string, number>): void {
  let before: ReturnType<typeof dnnlCallCounts>;
  beforeAll(() => {
    registerWasmTrainingKernels({ dnnl });
    before = dnnlCallCounts();
  });
  afterAll(() => {
    for (const [name, n] of Object.entries(dnnlCallCounts())) {
      const ran = n.native - (before[name]?.native ?? 0);
      const declined = n.fallback - (before[name]?.fallback ?? 0);
      if (dnnl) expect({ name, declined }).toEqual({ name, declined: handedBack[name] ?? 0 });
      else expect({ name, ran }).toEqual({ name, ran: 0 });
    }
    registerWasmTrainingKernels();
  });
}

describe.each(convModes)('conv2d gradients on wasm match cpu (oneDNN: %s)', (dnnl) => {
  useNativeKernels(dnnl, { Conv2DBackpropFilter: 1 });

  const cases: { name: string; x: number[]; f: number[]; strides: Pair; pad: Pad }[] = [
    { name: '3x3 same', x: [2, 7, 7, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same' },
    { name: '3x2 valid stride 2', x: [2, 8, 9, 2], f: [3, 2, 2, 5], strides: 2, pad: 'valid' },
    { name: '5x5 same strides [2,1]', x: [1, 10, 10, 4], f: [5, 5, 4, 3], strides: [2, 1], pad: 'same' },
    { name: '1x1 pointwise', x: [3, 6, 6, 5], f: [1, 1, 5, 6], strides: 1, pad: 'valid' },
    { name: '1x1 stride 2', x: [2, 7, 7, 3], f: [1, 1, 3, 2], strides: 2, pad: 'valid' },
    { name: 'explicit pad 1', x: [2, 6, 5, 3], f: [3, 3, 3, 2], strides: 1, pad: 1 },
    { name: 'explicit asymmetric pads, stride 2', x: [2, 9, 8, 2], f: [3, 3, 2, 3], strides: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
    { name: 'Inception 1x7, pads (0, 3)', x: [2, 9, 9, 4], f: [1, 7, 4, 3], strides: 1, pad: [[0, 0], [0, 0], [3, 3], [0, 0]] },
    { name: 'Inception 7x1, pads (3, 0)', x: [2, 9, 9, 4], f: [7, 1, 4, 3], strides: 1, pad: [[0, 0], [3, 3], [0, 0], [0, 0]] },
    { name: 'ResNet stem 7x7 stride 2 pad 3', x: [2, 16, 16, 3], f: [7, 7, 3, 4], strides: 2, pad: 3 },
    { name: 'LeNet conv1', x: [4, 28, 28, 1], f: [5, 5, 1, 6], strides: 1, pad: 'same' },
    { name: 'LeNet conv2', x: [4, 14, 14, 6], f: [5, 5, 6, 16], strides: 1, pad: 'valid' },
    // 3x3 over 64 channels: oneDNN's blocked layout below AVX-512 (the test:avx2 pass), NHWC above.
    { name: 'ResNet 3x3 over 64 channels, stride 2', x: [2, 9, 9, 64], f: [3, 3, 64, 32], strides: 2, pad: 'same' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await onBothBackends(() => {
        const x = random(c.x, 1);
        const f = random(c.f, 2);
        const weight = cotangent(outShape(c.x, c.f, c.strides, 1, c.pad, false), 3);
        const g = tf.grads((x: Tensor, f: Tensor) => tf.conv2d(x as any, f as any, c.strides, c.pad).mul(weight).sum());
        return g([x, f]);
      });
      expectSame(r);
    });
  }

  it('sums over image blocks when the patch matrix exceeds its budget', async () => {
    // 8 images of 40x40 output positions x 1600 taps is 20M floats: more than one 16M block.
    const xShape: [number, number, number, number] = [8, 40, 40, 64];
    const fShape: [number, number, number, number] = [5, 5, 64, 3];
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC' };
    const r = await onBothBackends(() => {
      const x = random(xShape, 4);
      const filter = random(fShape, 8);
      const dy = cotangent(outShape(xShape, fShape, 1, 1, 'same', false), 5);
      return [
        tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape }) as Tensor,
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: xShape }) as Tensor,
      ];
    });
    expectSame(r);
  }, 60_000);

  // tfjs's conv2d gradient refuses dilations, so the kernel is called directly. The oracle is the
  // undilated gradient of the zero-filled effective filter, read at the real taps.
  const dilated: { name: string; x: [number, number, number, number]; f: [number, number, number, number]; strides: Pair; dilations: Pair; pad: Pad }[] = [
    { name: 'dilation 2, same', x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, dilations: 2, pad: 'same' },
    { name: 'dilations [2,3], valid', x: [2, 10, 11, 2], f: [2, 3, 2, 3], strides: 1, dilations: [2, 3], pad: 'valid' },
    { name: 'dilation 2, stride 2, explicit pads', x: [1, 11, 10, 2], f: [3, 3, 2, 2], strides: 2, dilations: 2, pad: [[0, 0], [2, 1], [1, 2], [0, 0]] },
  ];
  for (const c of dilated) {
    it(c.name, async () => {
      const d = pair(c.dilations);
      const eff: [number, number, number, number] = [(c.f[0] - 1) * d[0] + 1, (c.f[1] - 1) * d[1] + 1, c.f[2], c.f[3]];
      const dyShape = outShape(c.x, c.f, c.strides, c.dilations, c.pad, false);
      const x = random(c.x, 6);
      const dy = cotangent(dyShape, 7);
      await wasm.init();
      const got = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f, dilations: c.dilations }) as Tensor;
      await cpu.init();
      const full = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: eff }) as Tensor;
      const want = taps(full, d);
      expect(maxAbsDiff(got.dataSync() as Float32Array, want.dataSync() as Float32Array)).toBeLessThanOrEqual(TOLERANCE);
      const f = random(c.f, 8);
      await wasm.init();
      const gotX = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x, dilations: c.dilations }) as Tensor;
      await cpu.init();
      const eff2 = dilatedFilter(f, d);
      const wantX = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: eff2 }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x }) as Tensor;
      expect(maxAbsDiff(gotX.dataSync() as Float32Array, wantX.dataSync() as Float32Array)).toBeLessThanOrEqual(TOLERANCE);
      tf.dispose([x, dy, got, full, want, f, gotX, eff2, wantX]);
      await wasm.init();
    });
  }

  it('forward: conv2d and fused conv2d (bias, ReLU), with strides, dilations and padding', async () => {
    const cases: { x: number[]; f: number[]; strides: Pair; dilations: Pair; pad: Pad }[] = [
      { x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, dilations: 1, pad: 'same' },
      { x: [2, 10, 11, 2], f: [2, 3, 2, 3], strides: [2, 1], dilations: 1, pad: 'valid' },
      { x: [1, 11, 10, 2], f: [3, 3, 2, 5], strides: 1, dilations: [2, 3], pad: 'same' },
      { x: [2, 8, 9, 3], f: [3, 3, 3, 2], strides: 2, dilations: 1, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
    ];
    for (const c of cases) {
      const r = await onBothBackends(() => {
        const x = random(c.x, 11);
        const f = random(c.f, 12);
        const bias = random([c.f[3]], 13);
        const plainConv = tf.conv2d(x as any, f as any, c.strides, c.pad as any, 'NHWC', c.dilations);
        const fused = tf.fused.conv2d({ x: x as any, filter: f as any, strides: c.strides, pad: c.pad as any, dilations: c.dilations, bias, activation: 'relu' });
        const linear = tf.fused.conv2d({ x: x as any, filter: f as any, strides: c.strides, pad: c.pad as any, dilations: c.dilations, bias });
        return [plainConv, fused, linear];
      });
      expectSame(r);
    }
  });

  it('refuses NCHW with a message that names the fix', async () => {
    await wasm.init();
    const x = tf.zeros([1, 2, 5, 5]);
    const dy = tf.zeros([1, 2, 3, 3]);
    expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] }))
      .toThrow(/NHWC/);
    tf.dispose([x, dy]);
  });
});

describe('the oneDNN addon', () => {
  // CI installs libdnnl-dev and sets KILN_REQUIRE_DNNL=1, so the native path cannot drop out unseen.
  it('is built and loaded (KILN_REQUIRE_DNNL=1)', (ctx) => {
    const why = whenDnnlOff ? 'oneDNN turned off by KILN_DNNL=0' : process.env.KILN_REQUIRE_DNNL !== '1' && 'runs with KILN_REQUIRE_DNNL=1 (as .ci/run sets it)';
    requireOrSkip(ctx, why, whenDnnlOff);
    expect(loadDnnl()).toMatchObject({ loaded: true });
    expect(String(wasm.describe().device)).toMatch(/oneDNN \d+\.\d+\.\d+ \S+ convolutions/);
  });

  it('replaces the convolution kernels, and puts the previous ones back when turned off', async (ctx) => {
    requireOrSkip(ctx, dnnlMissing, whenDnnlOff);
    await wasm.init();
    const names = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPoolGrad', 'BatchMatMul', 'Sum', 'Mean', 'FusedBatchNorm'];
    registerWasmTrainingKernels({ dnnl: false });
    const js = names.map((n) => tf.getKernel(n, 'wasm')!.kernelFunc);
    registerWasmTrainingKernels({ dnnl: true });
    const native = names.map((n) => tf.getKernel(n, 'wasm')!.kernelFunc);
    names.forEach((_, i) => expect(native[i]).not.toBe(js[i]));
    // tfjs's WASM kernels bind their C functions in setupFunc; the wrappers must keep it.
    expect(tf.getKernel('Conv2D', 'wasm')!.setupFunc).toBeTypeOf('function');
    // The fused batch-norm and optimizer kernels wrap nothing: they exist exactly while oneDNN is on.
    for (const k of ['KilnBatchNormTraining', 'KilnAdamUpdate', 'KilnAdamUpdateMulti', 'KilnSgdUpdate']) expect(tf.getKernel(k, 'wasm')).toBeDefined();
    // Any plugin instance describes the kernels in place, not just the one that registered them.
    expect(String(wasmBackend().describe().device)).toMatch(/oneDNN/);
    registerWasmTrainingKernels({ dnnl: false });
    names.forEach((n, i) => expect(tf.getKernel(n, 'wasm')!.kernelFunc).toBe(js[i]));
    expect(String(wasmBackend().describe().device)).not.toMatch(/oneDNN/);
    for (const k of ['KilnBatchNormTraining', 'KilnAdamUpdate', 'KilnAdamUpdateMulti', 'KilnSgdUpdate']) expect(tf.getKernel(k, 'wasm')).toBeUndefined();
    registerWasmTrainingKernels();
  });
});

describe('fused batch-norm kernels (oneDNN) match the composite on cpu', () => {
  beforeEach((ctx) => requireOrSkip(ctx, dnnlMissing, whenDnnlOff));
  const shapes: number[][] = [[4, 5, 6, 3], [2, 3, 3, 16], [8, 7]];
  for (const shape of shapes) {
    it(`[${shape}]`, async () => {
      const c = shape[shape.length - 1];
      const axes = shape.slice(0, -1).map((_, i) => i);
      const epsilon = 1e-3;
      await wasm.init();
      registerWasmTrainingKernels({ dnnl: true });
      const x = random(shape, 71);
      const gamma = random([c], 72);
      const beta = random([c], 73);
      const dy = cotangent(shape, 74);
      const got = tf.tidy(() => {
        const [y, mean, variance] = tf.engine().runKernel('KilnBatchNormTraining', { x, gamma, beta }, { epsilon }) as Tensor[];
        const grads = tf.engine().runKernel('KilnBatchNormTrainingGrad', { x, dy, mean, variance, gamma }, { epsilon }) as Tensor[];
        return [y, mean, variance, ...grads].map((t) => t.dataSync() as Float32Array);
      });
      await cpu.init();
      const want = tf.tidy(() => {
        const { mean, variance } = tf.moments(x, axes);
        const f = (xi: Tensor, g: Tensor, b: Tensor) => tf.add(tf.mul(tf.div(tf.sub(xi, tf.moments(xi, axes).mean), tf.sqrt(tf.add(tf.moments(xi, axes).variance, epsilon))), g), b);
        const y = f(x, gamma, beta);
        const grads = tf.grads((xi: Tensor, g: Tensor, b: Tensor) => tf.sum(tf.mul(f(xi, g, b), dy)))([x, gamma, beta]);
        return [y, mean, variance, ...grads].map((t) => t.dataSync() as Float32Array);
      });
      await wasm.init();
      got.forEach((g, i) => expect(maxAbsDiff(g, want[i]), `output ${i}`).toBeLessThanOrEqual(TOLERANCE));
      tf.dispose([x, gamma, beta, dy]);
    });
  }
});

describe('depthwise conv2d gradients on wasm match cpu', () => {
  const cases: { name: string; x: number[]; f: number[]; strides: Pair; pad: Pad }[] = [
    { name: 'multiplier 1, 3x3 same', x: [2, 7, 7, 3], f: [3, 3, 3, 1], strides: 1, pad: 'same' },
    { name: 'multiplier 2, valid stride 2', x: [2, 8, 9, 4], f: [3, 3, 4, 2], strides: 2, pad: 'valid' },
    { name: 'multiplier 2, 5x3 same strides [1,2]', x: [1, 9, 9, 2], f: [5, 3, 2, 2], strides: [1, 2], pad: 'same' },
    { name: 'multiplier 3, explicit pad 1', x: [2, 6, 6, 3], f: [3, 3, 3, 3], strides: 1, pad: 1 },
    { name: 'multiplier 2, explicit asymmetric pads', x: [2, 6, 7, 2], f: [2, 2, 2, 2], strides: 2, pad: [[0, 0], [1, 0], [0, 1], [0, 0]] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await onBothBackends(() => {
        const x = random(c.x, 11);
        const f = random(c.f, 12);
        const weight = cotangent(outShape(c.x, c.f, c.strides, 1, c.pad, true), 13);
        const g = tf.grads((x: Tensor, f: Tensor) => tf.depthwiseConv2d(x as any, f as any, c.strides, c.pad).mul(weight).sum());
        return g([x, f]);
      });
      expectSame(r);
    });
  }

  // Dilated depthwise gradients, called directly (tfjs's gradient refuses dilations too).
  const dilated: { name: string; x: [number, number, number, number]; f: [number, number, number, number]; strides: Pair; dilations: Pair; pad: Pad }[] = [
    { name: 'dilation 2, multiplier 2, same', x: [2, 9, 9, 3], f: [3, 3, 3, 2], strides: 1, dilations: 2, pad: 'same' },
    { name: 'dilations [3,2], valid', x: [1, 11, 9, 2], f: [2, 3, 2, 1], strides: 1, dilations: [3, 2], pad: 'valid' },
  ];
  for (const c of dilated) {
    it(c.name, async () => {
      const d = pair(c.dilations);
      const x = random(c.x, 14);
      const f = random(c.f, 15);
      const dy = cotangent(outShape(c.x, c.f, c.strides, c.dilations, c.pad, true), 16);
      const attrs = { strides: c.strides, dilations: c.dilations, pad: c.pad };
      await wasm.init();
      const gotF = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: c.f }) as Tensor;
      const gotX = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { ...attrs, inputShape: c.x }) as Tensor;
      await cpu.init();
      const eff = dilatedFilter(f, d);
      const undilated = { strides: c.strides, dilations: 1, pad: c.pad };
      const fullF = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...undilated, filterShape: eff.shape }) as Tensor;
      const wantF = taps(fullF, d);
      const wantX = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: eff }, { ...undilated, inputShape: c.x }) as Tensor;
      expect(maxAbsDiff(gotF.dataSync() as Float32Array, wantF.dataSync() as Float32Array)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(gotX.dataSync() as Float32Array, wantX.dataSync() as Float32Array)).toBeLessThanOrEqual(TOLERANCE);
      tf.dispose([x, f, dy, gotF, gotX, eff, fullF, wantF, wantX]);
      await wasm.init();
    });
  }
});

describe.each(convModes)('replaced WASM kernels match cpu (oneDNN: %s)', (dnnl) => {
  useNativeKernels(dnnl, {});
  const products: { name: string; a: number[]; b: number[]; tA: boolean; tB: boolean }[] = [
    { name: 'aᵀ·b', a: [7, 5], b: [7, 3], tA: true, tB: false },
    { name: 'a·bᵀ', a: [5, 7], b: [3, 7], tA: false, tB: true },
    { name: 'aᵀ·bᵀ', a: [7, 5], b: [3, 7], tA: true, tB: true },
    { name: 'batched aᵀ·b', a: [4, 6, 5], b: [4, 6, 2], tA: true, tB: false },
    { name: 'broadcast batch a·bᵀ', a: [3, 5, 6], b: [1, 4, 6], tA: false, tB: true },
    { name: 'a·b, rank 4 batches', a: [2, 3, 5, 6], b: [2, 3, 6, 4], tA: false, tB: false },
    { name: 'broadcast batch aᵀ·b, rank 2 against rank 3', a: [6, 5], b: [3, 6, 2], tA: true, tB: false },
    { name: 'dense layer backward, 64×400 · 400×120', a: [64, 400], b: [120, 400], tA: false, tB: true },
  ];
  for (const c of products) {
    it(`matMul ${c.name}`, async () => {
      expectSame(await onBothBackends(() => [tf.matMul(random(c.a, 51), random(c.b, 52), c.tA, c.tB)]));
    });
  }

  const pools: { name: string; x: number[]; size: Pair; strides: Pair; pad: 'valid' | 'same' | number }[] = [
    { name: '2x2 stride 2', x: [2, 8, 8, 3], size: 2, strides: 2, pad: 'valid' },
    // Disjoint windows that leave rows and columns out (odd size; gaps between windows): the
    // addon's one-pass path must zero what no window reaches.
    { name: '2x2 stride 2, odd size', x: [2, 7, 9, 6], size: 2, strides: 2, pad: 'valid' },
    { name: '2x2 stride 3 (gaps)', x: [2, 9, 8, 17], size: 2, strides: 3, pad: 'valid' },
    { name: '3x3 stride 3, LeNet-sized batch', x: [64, 12, 12, 6], size: 3, strides: 3, pad: 'valid' },
    { name: '3x3 stride 2 same', x: [2, 7, 9, 4], size: 3, strides: 2, pad: 'same' },
    // (A numeric pad with an even-sized window makes tfjs's own WASM forward MaxPool write past its
    // output — a tfjs bug outside these kernels — so the padded case uses an odd window.)
    { name: '3x3 stride 1 pad 1', x: [1, 6, 6, 2], size: 3, strides: 1, pad: 1 },
    { name: '3x2 stride [2,1] same', x: [2, 7, 6, 3], size: [3, 2], strides: [2, 1], pad: 'same' },
  ];
  for (const c of pools) {
    it(`maxPool gradient, ${c.name}, with ties after a ReLU`, async () => {
      const r = await onBothBackends(() => {
        // ReLU zeroes about half the inputs, so many windows tie: the first maximum must win.
        const x = tf.relu(random(c.x, 61));
        const w = random(outShape(c.x, [...pair(c.size), c.x[3], 1], c.strides, 1, c.pad, true), 62);
        return tf.grads((x: Tensor) => tf.maxPool(x as any, c.size, c.strides, c.pad).mul(w).sum())([x]);
      });
      expectSame(r);
    });
  }
});

describe('training on wasm', () => {
  /** A small conv net: conv → relu → flatten → dense → mean, differentiated in every input. */
  const net = (x: Tensor, f: Tensor, w: Tensor) =>
    tf.relu(tf.conv2d(x as any, f as any, 2, 'same')).reshape([x.shape[0], -1]).matMul(w).mean();

  it('gradients of conv2d, matMul and mean agree with cpu', async () => {
    const r = await onBothBackends(() => {
      const x = random([3, 8, 8, 2], 21);
      const f = random([3, 3, 2, 4], 22);
      const w = random([4 * 4 * 4, 5], 23);
      return tf.grads(net)([x, f, w]);
    });
    expectSame(r);
  });

  it('leaks no tensors and no heap data over 20 backward passes', async () => {
    await wasm.init();
    const x = random([4, 12, 12, 3], 31);
    const f = tf.variable(random([3, 3, 3, 8], 32));
    const dwf = tf.variable(random([3, 3, 8, 2], 33));
    const w = tf.variable(random([6 * 6 * 16, 4], 34));
    const ids = [3, 1, 0, 3];
    const step = () => {
      const { value, grads } = tf.variableGrads(() => {
        const h = tf.relu(tf.conv2d(x as any, f as any, 1, 'same'));
        const d = tf.depthwiseConv2d(h as any, dwf as any, 2, 'same').reshape([4, -1]).matMul(w);
        // unsortedSegmentSum goes through the CPU bridge, forward and backward.
        return tf.unsortedSegmentSum(d, tf.tensor1d(ids, 'int32'), 4).square().mean() as any;
      });
      tf.dispose([value, ...Object.values(grads)]);
    };
    step(); // first pass may allocate one-off state (kernel setup, constants)
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    for (let i = 0; i < 20; i++) step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    tf.dispose([x, f, dwf, w]);
  });
});

describe.each(convModes)('inference batch norm (tf.batchNorm) on wasm matches cpu (oneDNN: %s)', (dnnl) => {
  // The rank-3 input is reshaped by tfjs to 4-D first; none is handed back.
  useNativeKernels(dnnl, {});
  const cases: { name: string; shape: number[]; affine: boolean }[] = [
    { name: 'NHWC with scale and offset', shape: [3, 5, 4, 7], affine: true },
    { name: 'NHWC without scale and offset', shape: [2, 3, 3, 6], affine: false },
    { name: '[N, C]', shape: [9, 5], affine: true },
    { name: 'ResNet-sized channels', shape: [2, 4, 4, 64], affine: true },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const ch = c.shape[c.shape.length - 1];
      const x = random(c.shape, 51);
      const mean = random([ch], 52);
      const variance = tf.tidy(() => random([ch], 53).abs().add(0.1));
      const scale = random([ch], 54);
      const offset = random([ch], 55);
      const r = await onBothBackends(() => [
        c.affine ? tf.batchNorm(x, mean, variance, offset, scale, 1e-3) : tf.batchNorm(x, mean, variance, undefined, undefined, 1e-5),
      ]);
      expectSame(r);
      tf.dispose([x, mean, variance, scale, offset]);
    });
  }
});

describe('Identity on wasm', () => {
  it('shares its input\'s heap data (no copy) and frees it with the last reference', async () => {
    await wasm.init();
    const backend = tf.engine().backend;
    const dataIds = backend.numDataIds();
    const x = random([5, 7], 41);
    const values = x.dataSync().slice();
    const y = tf.clone(x); // the Identity kernel
    expect(backend.numDataIds()).toBe(dataIds + 1);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual(Array.from(values));
    y.dispose();
    expect(backend.numDataIds()).toBe(dataIds);
    // Strings live outside the heap and keep tfjs's own kernel.
    const s = tf.tensor1d(['a', 'bc'], 'string');
    const t = tf.clone(s);
    s.dispose();
    expect(t.dataSync()).toEqual(['a', 'bc']);
    t.dispose();
  });
});

describe('CPU bridge', () => {
  it('gives wasm every kernel the cpu backend has', () => {
    const onWasm = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
    const missing = tf.getKernelsForBackend('cpu').map((k) => k.kernelName).filter((n) => !onWasm.has(n));
    expect(missing).toEqual([]);
  });

  it('is idempotent', () => {
    const before = tf.getKernelsForBackend('wasm').length;
    registerWasmTrainingKernels();
    registerWasmTrainingKernels();
    expect(tf.getKernelsForBackend('wasm').length).toBe(before);
  });

  it('runs unsortedSegmentSum and its gradient like cpu', async () => {
    const r = await onBothBackends(() => {
      const x = random([6, 3], 41);
      const ids = tf.tensor1d([2, 0, 2, 1, 0, 2], 'int32');
      const sum = tf.unsortedSegmentSum(x, ids, 4);
      const [dx] = tf.grads((x: Tensor) => tf.unsortedSegmentSum(x, ids, 4).mul(random([4, 3], 42)).sum())([x]);
      return [sum, dx];
    });
    expectSame(r);
  });

  it('keeps int32 and string tensors intact across the copy', async () => {
    await wasm.init();
    // RaggedRange and StaticRegexReplace are bridged (no WASM kernels exist for them).
    const { rtNestedSplits: splits, rtDenseValues: values } =
      tf.raggedRange(tf.tensor1d([0, 5], 'int32'), tf.tensor1d([3, 8], 'int32'), tf.tensor1d([1, 2], 'int32'));
    expect(values.dtype).toBe('int32');
    expect(Array.from(splits.dataSync())).toEqual([0, 3, 5]);
    expect(Array.from(values.dataSync())).toEqual([0, 1, 2, 5, 7]);
    const replaced = tf.string.staticRegexReplace(tf.tensor1d(['kiln', 'fire']), 'i', 'I');
    expect(replaced.arraySync()).toEqual(['kIln', 'fIre']);
    tf.dispose([splits, values, replaced]);
  });
});

describe.each(convModes)('leading-axis reductions and row tiling on wasm match cpu (oneDNN: %s)', (dnnl) => {
  // With oneDNN on, leading-axis float32 sums run in the addon; the other reductions here are handed back.
  useNativeKernels(dnnl, { Sum: 3, Mean: 4 });
  const cases: { name: string; shape: number[]; axis: number | number[]; keepDims?: boolean }[] = [
    { name: 'bias gradient large enough to be split between threads', shape: [64, 1030], axis: 0 },
    { name: 'NHWC over N, H, W (batch-norm statistics)', shape: [5, 7, 6, 13], axis: [0, 1, 2] },
    { name: 'axes given out of order, negative, kept', shape: [4, 3, 9], axis: [1, -3], keepDims: true },
    { name: 'bias gradient over the batch', shape: [33, 17], axis: 0 },
    { name: 'every axis', shape: [3, 4, 5], axis: [0, 1, 2] },
    { name: 'inner axis (tfjs kernel)', shape: [6, 10], axis: 1 },
    { name: 'middle axis (tfjs kernel)', shape: [3, 4, 5], axis: [1] },
  ];
  for (const c of cases) {
    it(`sum and mean, ${c.name}`, async () => {
      const x = random(c.shape, 11);
      const r = await onBothBackends(() => [tf.sum(x, c.axis, c.keepDims), tf.mean(x, c.axis, c.keepDims)]);
      expectSame(r);
      // Shapes as the cpu backend gives them (keepDims included).
      await wasm.init();
      const onWasm = tf.tidy(() => tf.mean(x, c.axis, c.keepDims).shape);
      await cpu.init();
      const onCpu = tf.tidy(() => tf.mean(x, c.axis, c.keepDims).shape);
      await wasm.init();
      expect(onWasm).toEqual(onCpu);
      x.dispose();
    });
  }

  it('keeps int32 sums exact (tfjs kernel)', async () => {
    await wasm.init();
    const x = tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32');
    const s = tf.sum(x, 0);
    expect(s.dtype).toBe('int32');
    expect(Array.from(s.dataSync())).toEqual([9, 12]);
    tf.dispose([x, s]);
  });

  for (const [name, shape, reps] of [
    ['one row to NHWC (batch-norm gradient)', [1, 1, 1, 7], [4, 5, 3, 1]],
    ['vector repeated', [5], [1]],
    ['row into a non-power-of-two count', [1, 3], [11, 1]],
    ['every axis tiled', [2, 3], [2, 2]],
    ['grey to three channels', [2, 4, 5, 1], [1, 1, 1, 3]],
    ['rows tiled inside, blocks outside', [3, 1, 2, 4], [2, 3, 1, 2]],
    ['a size-1 middle axis repeated', [2, 1, 3], [1, 4, 1]],
    ['rank 5, reps of 1 between', [2, 1, 2, 1, 3], [1, 2, 1, 3, 1]],
    ['a zero-size axis', [2, 0, 3], [2, 1, 2]],
  ] as [string, number[], number[]][]) {
    it(`tile, ${name}`, async () => {
      const x = random(shape, 5);
      const xi = tf.cast(x.mul(100), 'int32');
      const r = await onBothBackends(() => [tf.tile(x, reps), tf.tile(xi, reps)]);
      // Copies: exactly the reference's values, in its order.
      r.wasm.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(r.cpu[i])));
      tf.dispose([x, xi]);
    });
  }

  it('batch-norm gradient through them matches cpu', async () => {
    const x = random([4, 5, 5, 6], 21);
    const g = random([6], 22);
    const b = random([6], 23);
    const loss = (xx: Tensor, gg: Tensor, bb: Tensor) => {
      const m = tf.moments(xx, [0, 1, 2]);
      return tf.sum(tf.square(tf.batchNorm(xx, m.mean, m.variance, bb, gg, 1e-5)).mul(random([4, 5, 5, 6], 24)));
    };
    const r = await onBothBackends(() => tf.grads(loss)([x, g, b]));
    expectSame(r);
    tf.dispose([x, g, b]);
  });
});
