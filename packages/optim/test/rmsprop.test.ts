import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, expectMatchesPytorch } from './support.js';

beforeAll(useWasm);

describe('RMSprop', () => {
  it.each(['rmsprop', 'rmsprop_centered_momentum_wd'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('accepts rho as another name for alpha and keeps the slots its options need', () => {
    const p = tf.variable(tf.ones([2]), true, 'rmsprop_rho');
    const opt = new O.RMSprop([p], { rho: 0.9, centered: true, momentum: 0.5 });
    expect(opt.paramGroups[0].hyper.alpha).toBe(0.9);
    const g = tf.ones([2]);
    opt.step({ [p.name]: g });
    expect(Object.keys(opt.stateDict().slots).sort()).toEqual(['0.grad_avg', '0.momentum_buffer', '0.square_avg', '0.step']);
    tf.dispose([p, g]);
    opt.dispose();
  });

  it('rejects invalid hyper-parameters, naming them', () => {
    const p = tf.variable(tf.zeros([1]), true, 'rmsprop_invalid');
    expect(() => new O.RMSprop([p], { alpha: 1.5 })).toThrow(core.ConfigError);
    expect(() => new O.RMSprop([p], { alpha: 1.5 })).toThrow(/RMSprop\.defaults\.alpha/);
    expect(() => new O.RMSprop([p], { momentum: -1 })).toThrow(/momentum/);
    expect(() => new O.RMSprop([p], { eps: -1 })).toThrow(/eps/);
    p.dispose();
  });
});
