import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, expectMatchesPytorch, Problem, makeOptimizer, optimCase, maxRelError, fixture } from './support.js';

beforeAll(useWasm);

describe('Lookahead', () => {
  it.each(['lookahead_adam', 'lookahead_sgd_momentum'])('matches PyTorch after 100 steps: %s', (name) => {
    expectMatchesPytorch(name);
  });

  it('shares the inner optimizer’s groups, so setLr and schedules reach it', () => {
    const p = tf.variable(tf.zeros([1]), true, 'lookahead_lr');
    const inner = new O.SGD([p], { lr: 0.1 });
    const la = new O.Lookahead(inner, { k: 2 });
    la.setLr(0.5);
    expect(inner.getLr()).toBe(0.5);
    expect(la.paramGroups).toBe(inner.paramGroups);
    const q = tf.variable(tf.zeros([1]), true, 'lookahead_lr_q');
    la.addParamGroup({ params: [q], lr: 0.2 });
    expect(inner.paramGroups.map((g) => g.hyper.lr)).toEqual([0.5, 0.2]);
    expect(() => la.addParamGroup({ params: [q] })).toThrow(/SGD\.paramGroups\[2\]|appears twice/);
    la.dispose();
    tf.dispose([p, q]);
  });

  it('restores exactly from a state dict taken mid-cycle (slow weights, inner slots, step)', () => {
    const c = optimCase('lookahead_adam');
    const a = new Problem();
    const optA = makeOptimizer(c, a);
    a.train(optA, 52);
    const state = optA.stateDict();
    expect(Object.keys(state.slots).sort()).toEqual(['0.exp_avg', '0.exp_avg_sq', '0.lookahead_slow', '0.step', '1.exp_avg', '1.exp_avg_sq', '1.lookahead_slow', '1.step']);
    const b = new Problem();
    b.W.assign(a.W);
    b.b.assign(a.b);
    const optB = makeOptimizer(c, b);
    optB.loadStateDict(state);
    b.train(optB, fixture.steps - 52, 52);
    expect(maxRelError(b.W.dataSync(), c.W)).toBeLessThan(1e-5);
    expect(maxRelError(b.b.dataSync(), c.b)).toBeLessThan(1e-5);
    [optA, optB].forEach((o) => o.dispose());
    a.dispose();
    b.dispose();
  });

  it('steps and loads state without leaking tensors', () => {
    const p = new Problem();
    const before = tf.memory().numTensors;
    const opt = new O.Lookahead(new O.SGD([p.W, p.b], { momentum: 0.9 }), { k: 2 });
    p.train(opt, 3);
    const copy = new O.Lookahead(new O.SGD([p.W, p.b], { momentum: 0.9 }), { k: 2 });
    copy.loadStateDict(opt.stateDict());
    expect(tf.memory().numTensors).toBe(before + 16);
    p.train(copy, 2, 3);
    expect(tf.memory().numTensors).toBe(before + 16);
    opt.dispose();
    copy.dispose();
    expect(tf.memory().numTensors).toBe(before);
    p.dispose();
  });

  it('rejects invalid k and alpha, naming them', () => {
    const p = tf.variable(tf.zeros([1]), true, 'lookahead_invalid');
    const inner = new O.SGD([p]);
    expect(() => new O.Lookahead(inner, { k: 0 })).toThrow(core.ConfigError);
    expect(() => new O.Lookahead(inner, { k: 0 })).toThrow(/Lookahead\.k/);
    expect(() => new O.Lookahead(inner, { alpha: 0 })).toThrow(/Lookahead\.alpha/);
    expect(() => new O.Lookahead({} as never)).toThrow(/Lookahead\.inner/);
    inner.dispose();
    p.dispose();
  });
});
