import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, expectMatchesPytorch } from './support.js';

beforeAll(useWasm);

describe('Adagrad', () => {
  it.each(['adagrad', 'adagrad_decay_wd_init'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('starts its accumulator at initialAccumulatorValue', () => {
    const p = tf.variable(tf.zeros([1]), true, 'adagrad_init');
    const opt = new O.Adagrad([p], { lr: 1, initialAccumulatorValue: 3, eps: 0 });
    const g = tf.ones([1]);
    opt.step({ [p.name]: g });
    // s = 3 + 1² = 4, step = 1/√4.
    expect(p.dataSync()[0]).toBeCloseTo(-0.5, 6);
    tf.dispose([p, g]);
    opt.dispose();
  });

  it('rejects invalid hyper-parameters, naming them', () => {
    const p = tf.variable(tf.zeros([1]), true, 'adagrad_invalid');
    expect(() => new O.Adagrad([p], { lrDecay: -1 })).toThrow(core.ConfigError);
    expect(() => new O.Adagrad([p], { lrDecay: -1 })).toThrow(/Adagrad\.defaults\.lrDecay/);
    expect(() => new O.Adagrad([p], { initialAccumulatorValue: -1 })).toThrow(/initialAccumulatorValue/);
    p.dispose();
  });
});
