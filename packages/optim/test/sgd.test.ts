import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, expectMatchesPytorch } from './support.js';

beforeAll(useWasm);

describe('SGD', () => {
  it.each(['sgd', 'sgd_momentum_dampening_wd', 'sgd_nesterov_wd', 'sgd_groups'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('takes one plain step p ← p − η·(g + λp)', () => {
    const p = tf.variable(tf.tensor1d([1, -2]), true, 'sgd_one_step');
    const opt = new O.SGD([p], { lr: 0.1, weightDecay: 0.5 });
    const g = tf.tensor1d([0.2, 0.4]);
    opt.step({ [p.name]: g });
    const got = p.dataSync();
    expect(got[0]).toBeCloseTo(1 - 0.1 * (0.2 + 0.5), 6);
    expect(got[1]).toBeCloseTo(-2 - 0.1 * (0.4 - 1), 6);
    tf.dispose([p, g]);
    opt.dispose();
  });

  it('rejects invalid hyper-parameters, naming them', () => {
    const p = tf.variable(tf.zeros([1]), true, 'sgd_invalid');
    expect(() => new O.SGD([p], { lr: -1 })).toThrow(core.ConfigError);
    expect(() => new O.SGD([p], { lr: -1 })).toThrow(/SGD\.defaults\.lr/);
    expect(() => new O.SGD([p], { momentum: -0.5 })).toThrow(/momentum/);
    expect(() => new O.SGD([p], { nesterov: true })).toThrow(/nesterov/);
    expect(() => new O.SGD([{ params: [p], weightDecay: -1 }])).toThrow(/paramGroups\[0\]\.weightDecay/);
    p.dispose();
  });
});
