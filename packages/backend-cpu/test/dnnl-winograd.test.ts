/**
 * Winograd convolutions: the addon asks oneDNN for F(4x4, 3x3) Winograd on 3x3 stride-1
 * convolutions over >= 64 channels in and out, which oneDNN 2.6 implements with AVX-512 only; on
 * other CPUs (or capped with ONEDNN_MAX_CPU_ISA=AVX2, as CI's AVX2 pass runs this file) the same
 * convolutions stay direct. Either way the results must be the reference CPU backend's within
 * float32 rounding, and the algorithm chosen must be the one the CPU allows.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { differencesFromCpu, dnnlSuite, seededTensor } from './reference.js';

const require = createRequire(import.meta.url);
const { tf } = require('@kiln/core') as typeof import('@kiln/core');
type Tensor = import('@kiln/core').Tensor;

const { wasm, cpu, dnnl } = dnnlSuite();

const random = seededTensor;

/** Largest absolute difference between the WASM (+ oneDNN) results and the reference CPU backend's. */
async function worstDifference(fn: () => Tensor[]): Promise<number> {
  return Math.max(...(await differencesFromCpu(fn, wasm, cpu)));
}

/** The oneDNN implementation lines of the cached convolutions whose geometry starts with `n,h,w,ci,`. */
function implementationsFor(x: number[]): string[] {
  if (!dnnl.loaded) return [];
  const prefix = ` ${x.join(',')},`;
  return dnnl.addon.convolutionImplementations().filter((line) => line.includes(prefix));
}

/** Whether oneDNN can run Winograd here: AVX-512 as its effective level, and not turned off. */
function winogradExpected(): boolean {
  if (!dnnl.loaded) return false;
  return process.env.KILN_DNNL_WINOGRAD !== '0';
}

describe('Winograd convolutions (3x3, stride 1, >= 64 channels)', () => {
  const cases: { name: string; x: number[]; f: number[]; pad: 'same' | 'valid'; winograd: boolean }[] = [
    { name: 'ResNet stage 1, 64 -> 64 at 28x28', x: [2, 28, 28, 64], f: [3, 3, 64, 64], pad: 'same', winograd: true },
    { name: '128 -> 256 at 14x14', x: [2, 14, 14, 128], f: [3, 3, 128, 256], pad: 'same', winograd: true },
    { name: '512 -> 512 at 4x4 (one output tile)', x: [2, 4, 4, 512], f: [3, 3, 512, 512], pad: 'same', winograd: true },
    { name: "odd size, 'valid' padding, 96 -> 80", x: [3, 9, 11, 96], f: [3, 3, 96, 80], pad: 'valid', winograd: true },
    // 468 tiles: Kiln's Winograd runs them in two chunks (455 + 13), the filter gradient adding up both.
    { name: 'more tiles than one chunk, 64 -> 64 at 12x12, batch 52', x: [52, 12, 12, 64], f: [3, 3, 64, 64], pad: 'same', winograd: true },
    { name: 'stem, 1 -> 64 (stays direct: slower in Winograd)', x: [2, 28, 28, 1], f: [3, 3, 1, 64], pad: 'same', winograd: false },
    { name: '32 -> 64 (stays direct: below 64 channels in)', x: [2, 8, 8, 32], f: [3, 3, 32, 64], pad: 'same', winograd: false },
  ];
  for (const c of cases) {
    it(`${c.name}: output, input and filter gradients match the reference; the algorithm is the one the CPU allows`, async () => {
      const x = random(c.x, 1);
      const f = random(c.f, 2, 1 / Math.sqrt(c.f[0] * c.f[1] * c.f[2]));
      const out = tf.tidy(() => tf.conv2d(x as any, f as any, 1, c.pad).shape);
      const w = random(out, 3, 1 / Math.sqrt(out[1] * out[2]));
      const worst = await worstDifference(() => {
        const g = tf.grads((a: Tensor, b: Tensor) => tf.conv2d(a as any, b as any, 1, c.pad).mul(w).sum());
        return [tf.conv2d(x as any, f as any, 1, c.pad), ...g([x, f])];
      });
      // Float32 sums in other orders (as kernels.test.ts allows); a wrong transform shows at order one.
      expect(worst).toBeLessThanOrEqual(1e-4);
      const lines = implementationsFor(c.x);
      expect(lines.length, 'the forward, input-gradient and filter-gradient primitives are cached').toBeGreaterThanOrEqual(3);
      const wino = lines.filter((l) => l.includes('wino'));
      if (c.winograd && winogradExpected()) expect(wino, lines.join('\n')).toHaveLength(lines.length);
      else expect(wino, lines.join('\n')).toHaveLength(0);
      tf.dispose([x, f, w]);
    }, 120_000); // the reference CPU backend takes seconds on the larger cases
  }

  it('fused forward with bias and ReLU (a bias copied to aligned memory) matches the reference', async () => {
    const x = random([2, 10, 10, 64], 4);
    const f = random([3, 3, 64, 128], 5, 1 / 24);
    const b = random([128], 6);
    const worst = await worstDifference(() => [tf.fused.conv2d({ x: x as any, filter: f as any, strides: 1, pad: 'same', bias: b, activation: 'relu' })]);
    expect(worst).toBeLessThanOrEqual(1e-4);
    const wino = implementationsFor([2, 10, 10, 64]).filter((l) => l.includes('wino'));
    expect(wino.length > 0).toBe(winogradExpected());
    tf.dispose([x, f, b]);
  });
});
