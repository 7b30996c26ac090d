/**
 * Kiln's few-channel convolutions (native/kiln_small_conv.h) run the passes oneDNN handles poorly
 * with few channels: the forward pass with <= 8 output channels, the input gradient with <= 8 input
 * and >= 16 output channels, the filter gradient with <= 8 output and <= 4 input channels with
 * AVX-512 (< 8 and 1 below it); filters wider than 1x1 only. Their results must be the reference CPU backend's within float32 rounding
 * for any stride, dilation and padding, and the kernel that ran must be the one the rule names
 * (`convolutionImplementations()`), including the shapes left to oneDNN. CI runs this file
 * natively, capped to AVX2 (the AVX2 build of the loops) and with KILN_DNNL=0 (skipped as allowed).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { differencesFromCpu, dnnlSuite, seededTensor } from './reference.js';

const require = createRequire(import.meta.url);
const { tf } = require('@kiln/core') as typeof import('@kiln/core');
type Tensor = import('@kiln/core').Tensor;
type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

const { wasm, cpu, dnnl } = dnnlSuite();

/** Whether the addon runs at AVX-512 (the level its own loops are compiled for follows oneDNN's). */
const avx512 = dnnl.loaded && dnnl.addon.info().cpuIsa.startsWith('avx512');

/** The implementation lines of the cached convolutions whose geometry starts with x's shape. */
function implementationsFor(x: number[]): string[] {
  if (!dnnl.loaded) return [];
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

describe("Kiln's few-channel convolutions", () => {
  const cases: Case[] = [
    { name: "LeNet-5's first layer, 1 -> 6, 5x5 'same' (forward and filter gradient)", x: [4, 28, 28, 1], f: [5, 5, 1, 6], pad: 'same' },
    { name: "LeNet-5's second layer, 6 -> 16, 5x5 'valid' (input gradient)", x: [4, 14, 14, 6], f: [5, 5, 6, 16], pad: 'valid' },
    { name: 'stride 2, odd sizes, 3 -> 5, 3x3 (forward and filter gradient)', x: [3, 11, 9, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same' },
    { name: 'stride 2, odd sizes, 4 -> 16, 3x3 (input gradient)', x: [3, 11, 9, 4], f: [3, 3, 4, 16], strides: 2, pad: 'same' },
    { name: 'dilation 2, 2 -> 4', x: [2, 12, 13, 2], f: [3, 3, 2, 4], dilations: 2, pad: 'same', forwardOnly: true },
    { name: 'uneven explicit padding, 3 -> 8, 4x2 (forward and filter gradient)', x: [2, 9, 10, 3], f: [4, 2, 3, 8], pad: [[0, 0], [1, 3], [0, 2], [0, 0]] },
    { name: 'uneven explicit padding, 8 -> 24, 4x2 (input gradient)', x: [2, 9, 10, 8], f: [4, 2, 8, 24], pad: [[0, 0], [1, 3], [0, 2], [0, 0]] },
    { name: 'a 7x7 filter wider than most of its input, stride 3, 1 -> 2', x: [2, 8, 20, 1], f: [7, 7, 1, 2], strides: 3, pad: 'same' },
    { name: '8 -> 8, 3x3 (forward only: the filter gradient has too many input channels)', x: [2, 9, 9, 8], f: [3, 3, 8, 8], pad: 'same' },
    { name: '1x1, 32 -> 3 (oneDNN: a matrix product)', x: [2, 7, 7, 32], f: [1, 1, 32, 3], pad: 'valid' },
    { name: '1x1, 4 -> 32 (oneDNN: a matrix product)', x: [2, 7, 7, 4], f: [1, 1, 4, 32], pad: 'valid' },
    { name: '12 -> 12 (oneDNN: more than 8 channels either way)', x: [3, 9, 10, 12], f: [3, 3, 12, 12], pad: 'same' },
    // Above the addon's one-thread limit (1 M multiply-adds): the images split over its threads
    // where it has two or more, and the filter gradient adds up each thread's share.
    { name: "LeNet-5's second layer at batch 64 (input gradient)", x: [64, 14, 14, 6], f: [5, 5, 6, 16], pad: 'valid' },
    { name: 'a large call, 1 -> 6 at 32x32, batch 64 (forward and filter gradient)', x: [64, 32, 32, 1], f: [5, 5, 1, 6], pad: 'same' },
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
      const [kh, kw, ci, co] = c.f;
      const wide = kh * kw > 1;
      expect(kernelOf(lines, 'forward') === 'kiln_small_direct', lines.join('\n')).toBe(small && wide && co <= 8);
      if (!c.forwardOnly) {
        expect(kernelOf(lines, 'backward_data') === 'kiln_small_direct', lines.join('\n')).toBe(small && wide && ci <= 8 && co >= 16);
        expect(kernelOf(lines, 'backward_weights') === 'kiln_small_direct', lines.join('\n')).toBe(small && wide && (avx512 ? co <= 8 && ci <= 4 : co < 8 && ci === 1));
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
    expect(Array.from(relu as Float32Array).some((v) => v > 0)).toBe(true);
    const values0 = (await x.data()).slice();
    values0[0] = NaN;
    const poisoned = tf.tensor(values0, x.shape);
    const out = tf.tidy(() => tf.fused.conv2d({ x: poisoned as any, filter: f as any, strides: 1, pad: 'same', bias: b, activation: 'relu' }));
    const values = await out.data();
    // Pixel (0, 0) of image 0 reaches the outputs within 2 pixels of it, in every channel: NaN there,
    // as the reference backend and PyTorch give. (oneDNN's fused ReLU, with KILN_DNNL_SMALL=0,
    // returns 0 for NaN.)
    if (process.env.KILN_DNNL_SMALL !== '0') expect(Number.isNaN(values[0]) && Number.isNaN(values[5])).toBe(true);
    expect(Number.isNaN(values[(3 * 12 + 3) * 6])).toBe(false);
    tf.dispose([x, f, b, poisoned, out]);
  });

  it('the filter gradient gives the same bits at every call', async () => {
    const x = seededTensor([64, 32, 32, 1], 7);
    const dy = seededTensor([64, 32, 32, 6], 8);
    const grad = async () => {
      const dw = tf.tidy(() => tf.grad((f: Tensor) => tf.conv2d(x as any, f as any, 1, 'same').mul(dy).sum())(tf.zeros([5, 5, 1, 6])));
      const v = await dw.data();
      dw.dispose();
      return v;
    };
    const first = await grad();
    expect(implementationsFor([64, 32, 32, 1]).some((l) => l.startsWith('backward_weights') && l.endsWith('kiln_small_direct'))).toBe(process.env.KILN_DNNL_SMALL !== '0');
    expect(Array.from(await grad())).toEqual(Array.from(first));
    tf.dispose([x, dy]);
  });
});
