import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm } from './support.js';

beforeAll(useWasm);

describe('gradient clipping', () => {
  it('globalNorm is √(Σ g²) over all tensors', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]], [1, 2]) };
    const n = O.globalNorm(grads);
    expect(n.dataSync()[0]).toBeCloseTo(5, 6);
    n.dispose();
    const empty = O.globalNorm([]);
    expect(empty.dataSync()[0]).toBe(0);
    tf.dispose([empty, ...Object.values(grads)]);
  });

  it('clipGradNorm scales all gradients jointly by maxNorm/(‖g‖ + 1e-6), and leaves small ones alone', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    const before = tf.memory().numTensors;
    const { grads: out, totalNorm } = O.clipGradNorm(grads, 1);
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(totalNorm).toBeCloseTo(5, 6);
    const s = 1 / (5 + 1e-6);
    expect(Array.from(out.a.dataSync())).toEqual([Math.fround(3 * s), 0].map((v) => expect.closeTo(v, 7)));
    expect(out.b.dataSync()[1]).toBeCloseTo(4 * s, 7);
    const { grads: same } = O.clipGradNorm(grads, 10);
    expect(Array.from(same.b.dataSync())).toEqual([0, 4]);
    expect(Array.from(grads.a.dataSync())).toEqual([3, 0]);
    tf.dispose([...Object.values(out), ...Object.values(same), ...Object.values(grads)]);
    expect(() => O.clipGradNorm({}, 0)).toThrow(/clipGradNorm\.maxNorm/);
  });

  it('clipGradValue clamps element-wise', () => {
    const grads = { a: tf.tensor1d([-3, 0.5, 2]) };
    const out = O.clipGradValue(grads, 1);
    expect(Array.from(out.a.dataSync())).toEqual([-1, 0.5, 1]);
    tf.dispose([out.a, grads.a]);
    expect(() => O.clipGradValue({}, -1)).toThrow(core.ConfigError);
    expect(() => O.clipGradValue({}, -1)).toThrow(/clipGradValue\.clipValue/);
  });
});
