/**
 * Kiln's few-channel convolutions (native/kiln_small_conv.h): the forward pass and filter gradient
 * of convolutions with <= 16 output channels, and the input gradient of those with <= 16 input
 * channels, run Kiln's own loops instead of oneDNN's. Their results must be the reference CPU
 * backend's within float32 rounding for any stride, dilation and padding, and the kernel that ran
 * must be the one the rule names (`convolutionImplementations()`). CI runs this file natively,
 * capped to AVX2 (the AVX2 build of the loops) and with KILN_DNNL=0 (skipped as allowed).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { differencesFromCpu, dnnlSuite, seededTensor } from './reference.js';

const require = createRequire(import.meta.url);
const { tf } = require('@kiln/core') as typeof import('@kiln/core');
type Tensor = import('@kiln/core').Tensor;
type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

const { wasm, cpu, dnnl } = dnnlSuite();

/** The implementation lines of the cached convolutions whose geometry starts with x's shape. */
function implementationsFor(x: number[]): string[] {
  const prefix = ` ${x.join(',')},`;
  return dnnl.addon.convolutionImplementations().filter((line) => line.includes(prefix));
}

function kernelOf(lines: string[], pass: 'forward' | 'backward_data' | 'backward_weights'): string {
  const line = lines.find((l) => l.startsWith(`${pass} `));
  return line ? line.slice(line.lastIndexOf(': ') + 2) : 'none';
}

interface Case {
  name: string;
  x: number[];
  f: number[];
  strides?: number;
  dilations?: number;
  pad: Pad;
  /** tfjs has no gradients of dilated convolutions: the forward pass only. */
  forwardOnly?: boolean;
}

describe('few-channel convolutions (<= 16 channels out: forward and filter gradient; <= 16 in: input gradient)', () => {
  const cases: Case[] = [
    { name: "LeNet-5's first layer, 1 -> 6, 5x5 'same'", x: [4, 28, 28, 1], f: [5, 5, 1, 6], pad: 'same' },
    { name: "LeNet-5's second layer, 6 -> 16, 5x5 'valid' (two vectors of output channels)", x: [4, 14, 14, 6], f: [5, 5, 6, 16], pad: 'valid' },
    { name: '12 -> 12 (a second vector half full, on both sides), 3x3', x: [3, 9, 10, 12], f: [3, 3, 12, 12], pad: 'same' },
    { name: '16 -> 32 (only the input gradient is Kiln\'s), stride 2', x: [2, 11, 11, 16], f: [3, 3, 16, 32], strides: 2, pad: 'same' },
    { name: '20 -> 9 (only the forward pass and filter gradient are Kiln\'s)', x: [2, 8, 8, 20], f: [3, 3, 20, 9], pad: 'valid' },
    { name: 'stride 2, odd sizes, 3 -> 5, 3x3', x: [3, 11, 9, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same' },
    { name: 'dilation 2, 2 -> 4', x: [2, 12, 13, 2], f: [3, 3, 2, 4], dilations: 2, pad: 'same', forwardOnly: true },
    { name: 'uneven explicit padding, 8 -> 8, 4x2', x: [2, 9, 10, 8], f: [4, 2, 8, 8], pad: [[0, 0], [1, 3], [0, 2], [0, 0]] },
    { name: '1x1, 32 -> 3 (the input gradient stays oneDNN\'s)', x: [2, 7, 7, 32], f: [1, 1, 32, 3], pad: 'valid' },
    { name: 'a 7x7 filter wider than most of its input, stride 3, 1 -> 2', x: [2, 8, 20, 1], f: [7, 7, 1, 2], strides: 3, pad: 'same' },
    // LeNet-5's second layer at batch 64 (15 M multiply-adds): its 16-channel filter gradient is Kiln's
    // where the addon has two threads or more.
    { name: "LeNet-5's second layer at batch 64", x: [64, 14, 14, 6], f: [5, 5, 6, 16], pad: 'valid' },
    // 105 M multiply-adds: above the addon's one-thread limit, so the images split over its threads
    // (where it has two or more) and the filter gradient adds up each thread's share.
    { name: 'a large call, 8 -> 8 at 32x32, batch 64', x: [64, 32, 32, 8], f: [5, 5, 8, 8], pad: 'same' },
  ];
  for (const c of cases) {
    it(`${c.name}: output, input and filter gradients match the reference; Kiln's loops run where the rule says`, async () => {
      const x = seededTensor(c.x, 1);
      const f = seededTensor(c.f, 2, 1 / Math.sqrt(c.f[0] * c.f[1] * c.f[2]));
      const conv = (a: Tensor, b: Tensor) => tf.conv2d(a as any, b as any, c.strides ?? 1, c.pad as any, 'NHWC', c.dilations ?? 1);
      const out = tf.tidy(() => conv(x, f).shape);
      const w = seededTensor(out, 3, 1 / Math.sqrt(out[1] * out[2]));
      const differences = await differencesFromCpu(() => {
        if (c.forwardOnly) return [conv(x, f)];
        const g = tf.grads((a: Tensor, b: Tensor) => conv(a, b).mul(w).sum());
        return [conv(x, f), ...g([x, f])];
      }, wasm, cpu);
      // Float32 sums in another order than the reference's (as kernels.test.ts allows); a wrong
      // index shows at order one.
      for (const [i, d] of differences.entries()) expect(d, ['y', 'dx', 'dw'][i]).toBeLessThanOrEqual(1e-4);
      const lines = implementationsFor(c.x);
      const small = process.env.KILN_DNNL_SMALL !== '0';
      const fewOut = small && c.f[3] <= 16;
      const fewIn = small && c.f[2] <= 16;
      // 9-16 output channels: Kiln's filter gradient only where the call splits over threads.
      const work = out.reduce((a, b) => a * b, 1) * c.f[0] * c.f[1] * c.f[2];
      const split = dnnl.addon.info().maxThreads > 1 && work >= 1e6;
      const fewOutGradient = small && (c.f[3] <= 8 || (c.f[3] <= 16 && split));
      expect(kernelOf(lines, 'forward') === 'kiln_small_direct', lines.join('\n')).toBe(fewOut);
      if (!c.forwardOnly) {
        expect(kernelOf(lines, 'backward_weights') === 'kiln_small_direct', lines.join('\n')).toBe(fewOutGradient);
        expect(kernelOf(lines, 'backward_data') === 'kiln_small_direct', lines.join('\n')).toBe(fewIn);
      }
      tf.dispose([x, f, w]);
    }, 120_000);
  }

  it('fused bias and ReLU match the reference, and a NaN input stays NaN through the ReLU', async () => {
    const x = seededTensor([3, 12, 12, 1], 4);
    const f = seededTensor([5, 5, 1, 6], 5, 0.2);
    const b = seededTensor([6], 6, 0.5);
    const fused = () => tf.fused.conv2d({ x: x as any, filter: f as any, strides: 1, pad: 'same', bias: b, activation: 'relu' });
    const [worst] = await differencesFromCpu(() => [fused()], wasm, cpu);
    expect(worst).toBeLessThanOrEqual(1e-5);
    const relu = await fused().data();
    expect(Math.min(...relu)).toBe(0);
    expect(relu.some((v) => v > 0)).toBe(true);
    const values0 = (await x.data()).slice();
    values0[0] = NaN;
    const poisoned = tf.tensor(values0, x.shape);
    const out = tf.tidy(() => tf.fused.conv2d({ x: poisoned as any, filter: f as any, strides: 1, pad: 'same', bias: b, activation: 'relu' }));
    const values = await out.data();
    // Pixel (0, 0) of image 0 reaches the outputs within 2 pixels of it, in every channel.
    expect(Number.isNaN(values[0]) && Number.isNaN(values[5])).toBe(true);
    expect(Number.isNaN(values[(3 * 12 + 3) * 6])).toBe(false);
    tf.dispose([x, f, b, poisoned, out]);
  });

  it('the filter gradient gives the same bits at every call', async () => {
    const x = seededTensor([64, 32, 32, 8], 7);
    const dy = seededTensor([64, 32, 32, 8], 8);
    const grad = async () => {
      const dw = tf.tidy(() => tf.grad((f: Tensor) => tf.conv2d(x as any, f as any, 1, 'same').mul(dy).sum())(tf.zeros([5, 5, 8, 8])));
      const v = await dw.data();
      dw.dispose();
      return v;
    };
    expect(Array.from(await grad())).toEqual(Array.from(await grad()));
    tf.dispose([x, dy]);
  });
});
