import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { clipGradients } from '@kiln/optim';
import { accuracy, topKAccuracy } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

describe('classification metrics', () => {
  const logits = () =>
    tf.tensor2d([
      [2, 1, 0],
      [0, 3, 1],
      [1, 0, 4],
      [5, 4, 0],
    ]);

  it('accuracy counts arg-max hits for integer labels', () => {
    const a = accuracy(logits(), tf.tensor1d([0, 1, 0, 1], 'int32'));
    expect(a.dataSync()[0]).toBeCloseTo(0.5, 6);
  });

  it('accuracy reads soft targets (MixUp/CutMix, one-hot) by their arg-max', () => {
    const soft = tf.tensor2d([
      [0.7, 0.3, 0],
      [0, 0.6, 0.4],
      [0.8, 0.2, 0],
      [0.1, 0.9, 0],
    ]);
    expect(accuracy(logits(), soft).dataSync()[0]).toBeCloseTo(0.5, 6);
  });

  it('top-k accuracy counts labels among the k largest logits', () => {
    const labels = tf.tensor1d([1, 2, 1, 1], 'int32');
    expect(topKAccuracy(logits(), labels, 1).dataSync()[0]).toBeCloseTo(0, 6);
    expect(topKAccuracy(logits(), labels, 2).dataSync()[0]).toBeCloseTo(0.75, 6);
  });
});

describe('clipGradients', () => {
  it('scales by maxNorm/‖g‖ when the global norm exceeds maxNorm, and leaves small gradients alone', () => {
    // ‖(3, 4)‖ = 5 → scaled to norm 1: (0.6, 0.8).
    const g = { a: tf.tensor1d([3]), b: tf.tensor1d([4]) };
    const c = clipGradients(g, 1, 'norm');
    expect(c.a.dataSync()[0]).toBeCloseTo(0.6, 5);
    expect(c.b.dataSync()[0]).toBeCloseTo(0.8, 5);
    const same = clipGradients(g, 10, 'norm');
    expect(same.a.dataSync()[0]).toBeCloseTo(3, 5);
  });

  it('clips each value into [-v, v] and leaks nothing', () => {
    const g = { a: tf.tensor1d([-3, 0.5, 2]) };
    const before = tf.memory().numTensors;
    const c = clipGradients(g, 1, 'value');
    expect(Array.from(c.a.dataSync())).toEqual([-1, 0.5, 1]);
    tf.dispose(Object.values(c));
    expect(tf.memory().numTensors).toBe(before);
  });
});
