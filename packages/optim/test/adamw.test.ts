import { beforeAll, describe, expect, it } from 'vitest';
import { O, tf, useWasm, expectMatchesPytorch } from './support.js';

beforeAll(useWasm);

describe('AdamW', () => {
  it.each(['adamw', 'adamw_amsgrad'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('decays the weights directly, not through the gradient (a zero gradient still shrinks them)', () => {
    const p = tf.variable(tf.tensor1d([2]), true, 'adamw_decoupled');
    const q = tf.variable(tf.tensor1d([2]), true, 'adam_coupled');
    const w = new O.AdamW([p], { lr: 0.1, weightDecay: 0.5 });
    const a = new O.Adam([q], { lr: 0.1, weightDecay: 0.5 });
    const zero = tf.zeros([1]);
    w.step({ [p.name]: zero });
    a.step({ [q.name]: zero });
    expect(p.dataSync()[0]).toBeCloseTo(2 * (1 - 0.1 * 0.5), 6);
    // Adam turns λp into a gradient, which the adaptive step normalises to a move of η.
    expect(q.dataSync()[0]).toBeCloseTo(2 - 0.1, 5);
    expect(w.paramGroups[0].hyper.weightDecay).toBe(0.5);
    expect(new O.AdamW([tf.variable(tf.zeros([1]), true, 'adamw_default')]).paramGroups[0].hyper.weightDecay).toBe(0.01);
    tf.dispose([p, q, zero]);
    w.dispose();
    a.dispose();
  });
});
