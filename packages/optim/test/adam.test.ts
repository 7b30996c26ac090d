import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, expectMatchesPytorch } from './support.js';

beforeAll(useWasm);

describe('Adam', () => {
  it.each(['adam', 'adam_amsgrad_wd', 'adam_groups'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('moves each weight by about η on the first step (bias correction)', () => {
    const p = tf.variable(tf.tensor1d([0, 0]), true, 'adam_first_step');
    const opt = new O.Adam([p], { lr: 0.01 });
    const g = tf.tensor1d([1e-3, -50]);
    opt.step({ [p.name]: g });
    const got = p.dataSync();
    expect(got[0]).toBeCloseTo(-0.01, 5);
    expect(got[1]).toBeCloseTo(0.01, 5);
    tf.dispose([p, g]);
    opt.dispose();
  });

  it('rejects betas outside [0, 1) and negative eps, naming them', () => {
    const p = tf.variable(tf.zeros([1]), true, 'adam_invalid');
    expect(() => new O.Adam([p], { beta1: 1 })).toThrow(core.ConfigError);
    expect(() => new O.Adam([p], { beta1: 1 })).toThrow(/Adam\.defaults\.beta1/);
    expect(() => new O.Adam([p], { beta2: -0.1 })).toThrow(/beta2/);
    expect(() => new O.Adam([p], { eps: -1 })).toThrow(/eps/);
    expect(() => new O.Adam([{ params: [p], lr: Number.NaN }])).toThrow(/paramGroups\[0\]\.lr/);
    p.dispose();
  });
});
