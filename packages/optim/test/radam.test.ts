import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, expectMatchesPytorch } from './support.js';

beforeAll(useWasm);

describe('RAdam', () => {
  it.each(['radam', 'radam_wd'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('takes un-normalised momentum steps while ρₜ ≤ 5 (the first steps with β₂ = 0.999)', () => {
    const p = tf.variable(tf.zeros([1]), true, 'radam_warm');
    const opt = new O.RAdam([p], { lr: 0.1 });
    const g = tf.tensor1d([4]);
    opt.step({ [p.name]: g });
    // m̂ = g on the first step, so p = −η·g (Adam would move by η only).
    expect(p.dataSync()[0]).toBeCloseTo(-0.4, 5);
    tf.dispose([p, g]);
    opt.dispose();
  });

  it('rejects betas outside [0, 1), naming them', () => {
    const p = tf.variable(tf.zeros([1]), true, 'radam_invalid');
    expect(() => new O.RAdam([p], { beta2: 1 })).toThrow(core.ConfigError);
    expect(() => new O.RAdam([p], { beta2: 1 })).toThrow(/RAdam\.defaults\.beta2/);
    p.dispose();
  });
});
