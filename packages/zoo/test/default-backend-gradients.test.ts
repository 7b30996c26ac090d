/**
 * Every zoo architecture trains on the default CPU backend with the gradients of tfjs's reference
 * `cpu` backend: one loss and one gradient per parameter, computed on both and compared. This
 * exercises every kernel each model needs for training (convolutions of every shape the zoo uses,
 * pooling, local response normalisation, concatenation, batch norm), including the oneDNN kernels
 * when they are built.
 *
 * Batch norm in training mode divides by the batch's standard deviation, so where a channel has
 * only a few values (deep layers at small inputs) float rounding is amplified without bound, and
 * untrained deep nets in eval mode grow activations layer by layer until a rounding difference of
 * 1e-6 flips a ReLU or a max-pool winner (Inception v3 at 75×75 reaches logits of 3e7). The cases
 * are chosen to be well conditioned: batch-norm models train where every channel sees ≥ 16
 * values, the deeper ones run in eval mode (running statistics; still every convolution kernel
 * forward and backward). The reference backend is slow, so inputs are small, and VGG is left out:
 * its 25,088×4,096 dense layer alone takes the reference backend half a minute, and its kernels
 * (3×3 convolutions, 2×2 max-pools, dense layers) are all exercised by the models here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, manualSeed, type Tensor } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { crossEntropy } from '@kiln/layers';
import { createModel, type ZooOptions } from '../src/index.js';

const wasm = wasmBackend();
const cpu = cpuBackend();

beforeAll(async () => {
  await wasm.init();
}, 60_000);

interface Case {
  name: string;
  options?: ZooOptions;
  /** [batch, size, channels]. */
  input: [number, number, number];
  mode: 'train' | 'eval';
}

const CASES: Case[] = [
  { name: 'lenet5', input: [4, 28, 1], mode: 'train' },
  { name: 'lenet5-classic', input: [4, 32, 1], mode: 'train' },
  { name: 'alexnet', options: { lrn: true }, input: [2, 63, 3], mode: 'train' },
  { name: 'resnet18', options: { smallInput: true }, input: [4, 16, 3], mode: 'train' },
  { name: 'resnet50', input: [2, 32, 3], mode: 'eval' },
  { name: 'googlenet', input: [2, 32, 3], mode: 'eval' },
];

/** The loss and every parameter's gradient on the active backend, copied to the host. */
function lossAndGrads(model: ReturnType<typeof createModel>, xs: Float32Array, c: Case): { loss: number; grads: Float32Array[] } {
  const [n, size, ch] = c.input;
  const x = tf.tensor(xs, [n, size, size, ch]);
  const y = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 5), 'int32');
  const vars = model.parameters().map((p) => p.variable);
  const { value, grads } = tf.variableGrads(() => {
    return crossEntropy(model.forward(x) as Tensor, y) as tf.Scalar;
  }, vars);
  const result = { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync() as Float32Array) };
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return result;
}

describe('zoo training gradients on the default backend match the reference cpu backend', () => {
  it.each(CASES)('$name ($mode, input $input)', async (c) => {
    await wasm.init();
    manualSeed(7);
    const model = createModel(c.name, { numClasses: 5, inChannels: c.input[2], dropout: 0, ...c.options });
    model.train(c.mode === 'train');
    const [n, size, ch] = c.input;
    const xs = tf.tidy(() => tf.randomUniform([n, size, size, ch], -1, 1, 'float32', 11).dataSync() as Float32Array);
    const state = model.stateDict();
    // Running statistics move in training mode: both backends start from the same ones.
    const buffers = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, t.dataSync().slice()]));
    try {
      const before = tf.memory().numTensors;
      const got = lossAndGrads(model, xs, c);
      expect(tf.memory().numTensors).toBe(before);
      await cpu.init();
      tf.tidy(() => void model.loadStateDict(Object.fromEntries(Object.entries(state).map(([k, t]) => [k, tf.tensor(buffers[k], t.shape, t.dtype)]))));
      const want = lossAndGrads(model, xs, c);
      expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(want.loss)));
      // Gradients of order one; the largest difference relative to the largest gradient.
      let worst = 0;
      let scale = 0;
      got.grads.forEach((g, i) => {
        for (let j = 0; j < g.length; j++) {
          worst = Math.max(worst, Math.abs(g[j] - want.grads[i][j]));
          scale = Math.max(scale, Math.abs(want.grads[i][j]));
        }
      });
      expect(scale).toBeGreaterThan(0);
      expect(worst / Math.max(1, scale)).toBeLessThanOrEqual(1e-4);
    } finally {
      await wasm.init();
      model.dispose();
    }
  }, 180_000);
});
