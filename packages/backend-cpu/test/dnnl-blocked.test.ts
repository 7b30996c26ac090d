/**
 * The oneDNN convolutions with activations in oneDNN's blocked layout (converted from and to
 * tfjs's NHWC at each call), which the addon picks below AVX-512 for 3x3 filters over >= 64
 * channels. KILN_DNNL_BLOCKED=1 forces that path for every convolution in this process, so that it
 * is checked against the reference CPU backend on any machine, for shapes it would and would not
 * pick on its own. (The addon reads the variable once, at its first convolution: this file runs
 * in its own process.)
 */
process.env.KILN_DNNL_BLOCKED = '1';
// Direct convolutions only: Winograd (dnnl-winograd.test.ts) would otherwise take the 3x3 stride-1
// cases over 64 channels, and this file would no longer test the blocked direct path on them.
process.env.KILN_DNNL_WINOGRAD = '0';

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { differencesFromCpu, dnnlSuite, seededTensor } from './reference.js';

const require = createRequire(import.meta.url);
const { tf } = require('@kiln/core') as typeof import('@kiln/core');
const { dnnlCallCounts } = require('@kiln/backend-cpu') as typeof import('../src/index.js');
type Tensor = import('@kiln/core').Tensor;

const { wasm, cpu } = dnnlSuite();

const random = seededTensor;

async function compare(fn: () => Tensor[]): Promise<void> {
  // Float32 sums in other orders (see kernels.test.ts); a layout error shows at order one.
  for (const worst of await differencesFromCpu(fn, wasm, cpu)) expect(worst).toBeLessThanOrEqual(1e-4);
}

describe('oneDNN convolutions in the blocked layout (KILN_DNNL_BLOCKED=1) match cpu', () => {
  const cases: { name: string; x: number[]; f: number[]; strides: number; pad: 'same' | 'valid' }[] = [
    { name: 'ResNet 3x3 over 64 channels', x: [2, 8, 8, 64], f: [3, 3, 64, 64], strides: 1, pad: 'same' },
    { name: '3x3 stride 2, 64 -> 128', x: [2, 9, 9, 64], f: [3, 3, 64, 128], strides: 2, pad: 'same' },
    { name: '1x1 stride 2 shortcut', x: [2, 8, 8, 64], f: [1, 1, 64, 128], strides: 2, pad: 'valid' },
    { name: 'LeNet conv1 (1 channel, 6 filters: padded blocks)', x: [3, 28, 28, 1], f: [5, 5, 1, 6], strides: 1, pad: 'same' },
    { name: 'odd channel counts', x: [2, 7, 6, 5], f: [3, 3, 5, 11], strides: 1, pad: 'valid' },
  ];
  for (const c of cases) {
    it(`${c.name}: output, input and filter gradients`, async () => {
      const before = dnnlCallCounts();
      const x = random(c.x, 1);
      const f = random(c.f, 2, 1 / Math.sqrt(c.f[0] * c.f[1] * c.f[2]));
      const out = tf.tidy(() => tf.conv2d(x as any, f as any, c.strides, c.pad).shape);
      const w = random(out, 3, 1 / Math.sqrt(out[0] * out[1] * out[2]));
      await compare(() => {
        const g = tf.grads((a: Tensor, b: Tensor) => tf.conv2d(a as any, b as any, c.strides, c.pad).mul(w).sum());
        return [tf.conv2d(x as any, f as any, c.strides, c.pad), ...g([x, f])];
      });
      const after = dnnlCallCounts();
      for (const k of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter']) {
        expect(after[k].native - (before[k]?.native ?? 0)).toBeGreaterThan(0);
      }
      tf.dispose([x, f, w]);
    });
  }

  it('fused forward with bias and ReLU', async () => {
    const x = random([2, 8, 8, 64], 4);
    const f = random([3, 3, 64, 32], 5, 1 / 24);
    const b = random([32], 6);
    await compare(() => [tf.fused.conv2d({ x: x as any, filter: f as any, strides: 1, pad: 'same', bias: b, activation: 'relu' })]);
    tf.dispose([x, f, b]);
  });
});
