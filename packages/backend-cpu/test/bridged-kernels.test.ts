import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';

beforeAll(async () => {
  await wasmBackend().init();
});

/** Gradients of Σ(conv3d(x, w) · c) with respect to x and w on the named backend, as arrays. */
async function conv3dGrads(backend: 'wasm' | 'cpu', stride: number, pad: 'same' | 'valid'): Promise<number[][]> {
  await (backend === 'wasm' ? wasmBackend() : cpuBackend()).init();
  return tf.tidy(() => {
    const x = tf.tensor5d(Array.from({ length: 2 * 5 * 6 * 4 * 3 }, (_, i) => Math.sin(i * 0.37)), [2, 5, 6, 4, 3]);
    const w = tf.tensor5d(Array.from({ length: 3 * 3 * 2 * 3 * 4 }, (_, i) => Math.cos(i * 0.21)), [3, 3, 2, 3, 4]);
    const y = tf.conv3d(x, w, stride, pad);
    const c = tf.tensor(Array.from({ length: y.size }, (_, i) => Math.sin(i * 0.11) / 4), y.shape);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, stride, pad), c)))([x, w]);
    return [Array.from(gx.dataSync()), Array.from(gw.dataSync())];
  });
}

describe('WASM kernels replaced by the reference implementation', () => {
  for (const [stride, pad] of [
    [1, 'same'],
    [2, 'valid'],
  ] as const) {
    it(`conv3d input and filter gradients agree with cpu (stride ${stride}, ${pad})`, async () => {
      const cpu = await conv3dGrads('cpu', stride, pad);
      const wasm = await conv3dGrads('wasm', stride, pad);
      for (let k = 0; k < 2; k++) {
        const worst = Math.max(...wasm[k].map((v, i) => Math.abs(v - cpu[k][i])));
        expect(worst, k === 0 ? "input gradient" : "filter gradient").toBeLessThan(1e-4);
      }
    });
  }
});
