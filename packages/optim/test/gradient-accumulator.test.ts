import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, Problem, type Scalar } from './support.js';

beforeAll(useWasm);

describe('GradientAccumulator', () => {
  it('the mean of 4 micro-batch gradients equals the gradient of the mean loss over all 4 batches', () => {
    const p = new Problem();
    const acc = new O.GradientAccumulator({ steps: 4 });
    for (let s = 0; s < 4; s++) {
      expect(acc.ready).toBe(false);
      const { value, grads } = tf.variableGrads(() => p.loss(s), [p.W, p.b]);
      acc.add(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(acc.ready).toBe(true);
    const mean = acc.take();
    expect(acc.count).toBe(0);
    const { value, grads: full } = tf.variableGrads(() => tf.div(tf.addN([0, 1, 2, 3].map((s) => p.loss(s))), 4) as Scalar, [p.W, p.b]);
    for (const k of Object.keys(full)) {
      const a = mean[k].dataSync();
      const e = full[k].dataSync();
      for (let i = 0; i < e.length; i++) expect(a[i]).toBeCloseTo(e[i], 5);
    }
    tf.dispose([value, ...Object.values(full), ...Object.values(mean)]);
    p.dispose();
  });

  it('sums with reduction "sum", saves and restores mid-accumulation, and frees its tensors', () => {
    const before = tf.memory().numTensors;
    const acc = new O.GradientAccumulator({ steps: 3, reduction: 'sum' });
    const g = { w: tf.tensor1d([1, 2]) };
    acc.add(g);
    acc.add(g);
    const copy = new O.GradientAccumulator({ steps: 3, reduction: 'sum' });
    copy.loadStateDict(acc.stateDict());
    copy.add(g);
    expect(copy.ready).toBe(true);
    const out = copy.take();
    expect(Array.from(out.w.dataSync())).toEqual([3, 6]);
    tf.dispose([out.w, g.w]);
    acc.reset();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => acc.take()).toThrow(core.KilnError);
  });

  it('rejects bad options and shape changes', () => {
    expect(() => new O.GradientAccumulator({ steps: 0 })).toThrow(/GradientAccumulator\.steps/);
    expect(() => new O.GradientAccumulator({ steps: 2, reduction: 'max' as never })).toThrow(/GradientAccumulator\.reduction/);
    const acc = new O.GradientAccumulator({ steps: 2 });
    const a = tf.zeros([2]);
    const b = tf.zeros([3]);
    acc.add({ w: a });
    expect(() => acc.add({ w: b })).toThrow(/changed shape/);
    acc.reset();
    tf.dispose([a, b]);
  });
});
