import { tf } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { cudaBackend } from '../src/cuda-backend.js';

// Runs only where @tensorflow/tfjs-node-gpu is installed and a supported GPU is visible; otherwise
// the skip reason is the backend's own diagnosis, which the test summary lists.
const plugin = cudaBackend();
const availability = await plugin.availability!();

describe('cuda backend on a real GPU', () => {
  it('gradients match the closed form and a small CNN trains', async (ctx) => {
    requireOrSkip(ctx, !availability.available && `cuda unavailable: ${availability.reason}`, 'tfjs-node-gpu');
    await plugin.init();
    expect(tf.getBackend()).toBe('tensorflow');
    console.log('[backend-cuda]', JSON.stringify(plugin.describe()));
    const before = tf.memory().numTensors;

    // Least squares: d/dw mean((Xw - y)^2) = 2/N Xᵀ(Xw - y), checked against float64 on the host.
    const X = [[1, 2], [3, -1], [0.5, 4], [-2, 1]];
    const y = [1, 0, 2, -1];
    const w = [0.3, -0.7];
    const g = tf.tidy(() => tf.grad((wt: tf.Tensor) => tf.mean(tf.square(tf.sub(tf.matMul(tf.tensor2d(X), wt.reshape([2, 1])), tf.tensor2d(y, [4, 1])))))(tf.tensor1d(w)));
    const r = X.map((row, i) => row[0] * w[0] + row[1] * w[1] - y[i]);
    const expected = [0, 1].map((j) => (2 / X.length) * X.reduce((s, row, i) => s + row[j] * r[i], 0));
    const got = await g.data();
    g.dispose();
    expected.forEach((e, j) => expect(got[j]).toBeCloseTo(e, 4));

    // Two classes of 8x8 images: bright left half or bright right half, plus noise.
    const n = 64;
    const imgs = new Float32Array(n * 64);
    const labels: number[] = [];
    let s = 7;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let k = 0; k < n; k++) {
      const c = k % 2;
      labels.push(c);
      for (let i = 0; i < 64; i++) imgs[k * 64 + i] = ((i % 8 < 4) === (c === 0) ? 1 : 0) + 0.3 * (rand() - 0.5);
    }
    const xs = tf.tensor4d(imgs, [n, 8, 8, 1]);
    const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 2));
    const k1 = tf.tidy(() => tf.variable(tf.randomNormal([3, 3, 1, 4], 0, 0.3, 'float32', 1)));
    const w2 = tf.tidy(() => tf.variable(tf.randomNormal([8 * 8 * 4, 2], 0, 0.05, 'float32', 2)));
    const loss = () => tf.losses.softmaxCrossEntropy(ys, tf.matMul(tf.relu(tf.conv2d(xs as tf.Tensor4D, k1 as tf.Tensor4D, 1, 'same')).reshape([n, -1]), w2)) as tf.Scalar;
    const first = tf.tidy(() => loss().dataSync()[0]);
    const opt = tf.train.sgd(0.5);
    for (let step = 0; step < 40; step++) tf.tidy(() => void opt.minimize(loss));
    const last = tf.tidy(() => loss().dataSync()[0]);
    expect(last).toBeLessThan(first * 0.5);
    [xs, ys, k1, w2].forEach((t) => t.dispose());
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
