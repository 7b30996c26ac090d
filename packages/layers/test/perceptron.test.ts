import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, runLayerContractTest, tf, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

const X = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

describe('Rosenblatt perceptron', () => {
  it('applies w ← w + σ(y − h(x))x one sample at a time', () => {
    const p = new L.Perceptron({ inFeatures: 2, learningRate: 0.5 });
    // h(x) = H(0) = 1 for the first sample, label 0: w ← w − 0.5·x, b ← b − 0.5.
    const r = p.fit(tf.tensor2d([[2, -1]]), tf.tensor1d([0]), { epochs: 1 });
    expect(r.errors).toEqual([1]);
    expect(Array.from(p.weight.variable.dataSync())).toEqual([-1, 0.5]);
    expect(p.bias.variable.dataSync()[0]).toBe(-0.5);
    p.dispose();
  });

  it('learns AND and OR (linearly separable) and predicts with the Heaviside step', () => {
    for (const labels of [
      [0, 0, 0, 1],
      [0, 1, 1, 1],
    ]) {
      const p = new L.Perceptron({ inFeatures: 2 });
      const x = tf.tensor2d(X);
      const r = p.fit(x, tf.tensor1d(labels));
      expect(r.converged).toBe(true);
      const h = p.forward(x);
      expect(Array.from(h.dataSync())).toEqual(labels);
      tf.dispose([x, h]);
      p.dispose();
    }
  });

  it('cannot separate XOR (Minsky & Papert): never a clean pass', () => {
    const p = new L.Perceptron({ inFeatures: 2 });
    const r = p.fit(tf.tensor2d(X), tf.tensor1d([0, 1, 1, 0]), { epochs: 50 });
    expect(r.converged).toBe(false);
    expect(r.errors).toHaveLength(50);
    expect(Math.min(...r.errors)).toBeGreaterThan(0);
    p.dispose();
  });

  it('rejects bad labels and shapes', () => {
    const p = new L.Perceptron({ inFeatures: 2 });
    expect(() => p.fit(tf.tensor2d(X), tf.tensor1d([0, 2, 1, 0]))).toThrow(core.ConfigError);
    expect(() => p.fit(tf.tensor2d(X), tf.tensor1d([0, 1]))).toThrow(core.ShapeMismatchError);
    p.dispose();
  });

  it('honours the layer contract (no gradient-trained parameters)', () => {
    runLayerContractTest({ make: () => new L.Perceptron({ inFeatures: 3 }), input: [4, 3], output: [4], params: 4, badInput: [4, 2] });
  });
});
