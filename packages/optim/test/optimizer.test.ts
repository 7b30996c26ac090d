import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, Problem, makeOptimizer, optimCase, maxRelError, fixture, expectMatchesPytorch, kilnOptions } from './support.js';

beforeAll(useWasm);

describe('Optimizer (base class)', () => {
  it.each(['sgd_groups', 'adam_amsgrad_wd', 'rmsprop_centered_momentum_wd', 'adagrad_decay_wd_init', 'radam_wd'])(
    'stateDict()/loadStateDict() resume exactly: 40 steps, restore into a fresh optimizer, 60 more = PyTorch’s 100 (%s)',
    (name) => {
      const c = optimCase(name);
      const a = new Problem();
      const optA = makeOptimizer(c, a);
      a.train(optA, 40);
      const state = optA.stateDict();
      expect(state.step).toBe(40);
      const b = new Problem();
      b.W.assign(a.W);
      b.b.assign(a.b);
      const optB = makeOptimizer(c, b);
      optB.loadStateDict(state);
      expect(optB.stepCount).toBe(40);
      expect(optB.paramGroups.map((g) => g.hyper)).toEqual(optA.paramGroups.map((g) => g.hyper));
      b.train(optB, fixture.steps - 40, 40);
      expect(maxRelError(b.W.dataSync(), c.W)).toBeLessThan(1e-5);
      expect(maxRelError(b.b.dataSync(), c.b)).toBeLessThan(1e-5);
      optA.dispose();
      optB.dispose();
      a.dispose();
      b.dispose();
    },
  );

  it.each(['adam_add_group_late', 'sgd_momentum_add_group_late', 'radam_add_group_late'])(
    'a group added later (an unfrozen backbone) starts its own step count, as in PyTorch: %s',
    (name) => {
      expectMatchesPytorch(name);
    },
  );

  it('survives a safetensors round trip (as the trainer checkpoints it) and resumes exactly', () => {
    const c = optimCase('adam_add_group_late');
    const a = new Problem();
    const optA = makeOptimizer(c, a);
    a.train(optA, c.addBAt!);
    optA.addParamGroup({ params: [a.b], ...kilnOptions(c.groups![1]) });
    a.train(optA, 20, c.addBAt!);
    const state = optA.stateDict();
    const bytes = core.encodeSafetensors(Object.fromEntries(Object.entries(state.slots).map(([k, t]) => [k, core.toHost(t)])));
    const decoded = core.decodeSafetensors(bytes);
    const slots = Object.fromEntries(Object.entries(decoded.tensors).map(([k, h]) => [k, core.fromHost(h)]));
    expect(slots['0.step'].dataSync()[0]).toBe(c.addBAt! + 20);
    expect(slots['1.step'].dataSync()[0]).toBe(20);
    const meta = JSON.parse(JSON.stringify({ step: state.step, groups: state.groups })) as typeof state;

    const b = new Problem();
    b.W.assign(a.W);
    b.b.assign(a.b);
    const optB = makeOptimizer(c, b);
    optB.addParamGroup({ params: [b.b], ...kilnOptions(c.groups![1]) });
    optB.loadStateDict({ ...meta, slots });
    tf.dispose(Object.values(slots));
    b.train(optB, fixture.steps - c.addBAt! - 20, c.addBAt! + 20);
    expect(maxRelError(b.W.dataSync(), c.W)).toBeLessThan(1e-5);
    expect(maxRelError(b.b.dataSync(), c.b)).toBeLessThan(1e-5);
    [optA, optB].forEach((o) => o.dispose());
    a.dispose();
    b.dispose();
  });

  it('reads state saved without per-parameter step slots as all parameters at `step`', () => {
    const c = optimCase('adam_amsgrad_wd');
    const a = new Problem();
    const optA = makeOptimizer(c, a);
    a.train(optA, 40);
    const state = optA.stateDict();
    const legacy = { ...state, slots: Object.fromEntries(Object.entries(state.slots).filter(([k]) => !k.endsWith('.step'))) };
    expect(Object.keys(legacy.slots)).toHaveLength(6);
    const b = new Problem();
    b.W.assign(a.W);
    b.b.assign(a.b);
    const optB = makeOptimizer(c, b);
    optB.loadStateDict(legacy);
    expect(optB.stateDict().slots['1.step'].dataSync()[0]).toBe(40);
    b.train(optB, fixture.steps - 40, 40);
    expect(maxRelError(b.W.dataSync(), c.W)).toBeLessThan(1e-5);
    [optA, optB].forEach((o) => o.dispose());
    a.dispose();
    b.dispose();
  });

  it('addParamGroup validates the group like the constructor does', () => {
    const p = new Problem();
    const opt = new O.SGD([p.W]);
    expect(() => opt.addParamGroup({ params: [p.W] })).toThrow(/paramGroups\[1\]\.params/);
    expect(() => opt.addParamGroup({ params: [p.b], lr: -1 })).toThrow(/SGD\.paramGroups\[1\]\.lr/);
    expect(() => opt.addParamGroup({ params: [3 as never] })).toThrow(core.ConfigError);
    const g = opt.addParamGroup({ params: [p.b], lr: 0.5, name: 'head' });
    expect([g.name, g.initialLr, opt.paramGroups.length]).toEqual(['head', 0.5, 2]);
    opt.dispose();
    p.dispose();
  });

  it('restores group hyper-parameters and initial rates', () => {
    const p = new Problem();
    const opt = new O.Adam([{ params: [p.W], lr: 1e-4, name: 'backbone' }, { params: [p.b], weightDecay: 0.1, name: 'head' }], { lr: 1e-3 });
    expect(opt.paramGroups.map((g) => [g.name, g.hyper.lr, g.hyper.weightDecay, g.initialLr])).toEqual([
      ['backbone', 1e-4, 0, 1e-4],
      ['head', 1e-3, 0.1, 1e-3],
    ]);
    const state = opt.stateDict();
    opt.setLr(5);
    opt.paramGroups[1].initialLr = 7;
    opt.loadStateDict(state);
    expect(opt.getLr(0)).toBe(1e-4);
    expect(opt.getLr(1)).toBe(1e-3);
    expect(opt.paramGroups[1].initialLr).toBe(1e-3);
    opt.dispose();
    p.dispose();
  });

  it('rejects state that does not fit, and parameters listed twice', () => {
    const p = new Problem();
    const opt = new O.SGD([p.W, p.b], { momentum: 0.9 });
    const other = new O.SGD([{ params: [p.W] }, { params: [p.b] }]);
    expect(() => opt.loadStateDict(other.stateDict())).toThrow(core.KilnError);
    const wrong = tf.zeros([2]);
    expect(() => opt.loadStateDict({ ...opt.stateDict(), slots: { '0.momentum_buffer': wrong } })).toThrow(/wrong shape/);
    expect(() => opt.loadStateDict({ ...opt.stateDict(), slots: { '9.momentum_buffer': wrong } })).toThrow(/does not exist/);
    expect(() => new O.SGD([{ params: [p.W] }, { params: [p.W] }])).toThrow(/paramGroups\[1\]\.params/);
    expect(() => opt.setLr(-1)).toThrow(core.ConfigError);
    wrong.dispose();
    opt.dispose();
    other.dispose();
    p.dispose();
  });

  it('steps without leaking tensors, and dispose()/clearState() free its slots', () => {
    const p = new Problem();
    const opt = new O.Adam([p.W, p.b], { amsgrad: true });
    p.train(opt, 1);
    const before = tf.memory().numTensors;
    p.train(opt, 3, 1);
    expect(tf.memory().numTensors).toBe(before);
    opt.clearState();
    expect(opt.stepCount).toBe(0);
    expect(opt.stateDict().slots).toEqual({});
    expect(tf.memory().numTensors).toBe(before - 8);
    p.train(opt, 1);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before - 8);
    p.dispose();
  });

  it('skips frozen parameters and those without a gradient', () => {
    const p = new Problem();
    p.b.trainable = false;
    const opt = new O.SGD([p.W, p.b], { lr: 0.1 });
    const b0 = Array.from(p.b.dataSync());
    const w0 = Array.from(p.W.dataSync());
    const g = tf.onesLike(p.W);
    const gb = tf.onesLike(p.b);
    opt.step({ [p.W.name]: g, [p.b.name]: gb });
    expect(Array.from(p.b.dataSync())).toEqual(b0);
    expect(Array.from(p.W.dataSync())[0]).toBeCloseTo(w0[0] - 0.1, 6);
    opt.step({});
    expect(Array.from(p.W.dataSync())[0]).toBeCloseTo(w0[0] - 0.1, 6);
    tf.dispose([g, gb]);
    opt.dispose();
    p.dispose();
  });
});
