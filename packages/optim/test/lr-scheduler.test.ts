import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, Problem, makeOptimizer, optimCase, maxRelError, fixture } from './support.js';

beforeAll(useWasm);

describe('LrScheduler', () => {
  it.each([
    ['adam_warmup_cosine', O.withWarmup(O.cosineAnnealingLr({ tMax: 90 }), { steps: 10, startFactor: 0.1 })],
    ['sgd_momentum_one_cycle', O.oneCycleLr({ maxLr: 0.08, totalSteps: 100 })],
    ['rmsprop_step', O.stepLr({ stepSize: 20, gamma: 0.5 })],
  ] as const)('drives an optimizer per step to PyTorch’s weights after 100 steps: %s', (name, schedule) => {
    const c = optimCase(name);
    expect(c.scheduled).toBe(true);
    const p = new Problem();
    const opt = makeOptimizer(c, p);
    p.train(opt, fixture.steps, 0, new O.LrScheduler(opt, schedule));
    expect(maxRelError(p.W.dataSync(), c.W)).toBeLessThan(1e-5);
    expect(maxRelError(p.b.dataSync(), c.b)).toBeLessThan(1e-5);
    opt.dispose();
    p.dispose();
  });

  it('scales each group from its own initial rate, and resumes from its state dict', () => {
    const a = tf.variable(tf.zeros([1]), true, 'lrs_a');
    const b = tf.variable(tf.zeros([1]), true, 'lrs_b');
    const opt = new O.Adam([{ params: [a], lr: 1e-4 }, { params: [b], lr: 1e-2 }]);
    const s = new O.LrScheduler(opt, O.stepLr({ stepSize: 2, gamma: 0.5 }));
    expect(s.getLastLr()).toEqual([1e-4, 1e-2]);
    s.step();
    s.step();
    s.step();
    expect(s.stepCount).toBe(3);
    expect(s.getLastLr()).toEqual([5e-5, 5e-3]);
    const state = JSON.parse(JSON.stringify(s.stateDict())) as Record<string, unknown>;

    const opt2 = new O.Adam([{ params: [a], lr: 1e-4 }, { params: [b], lr: 1e-2 }]);
    const s2 = new O.LrScheduler(opt2, O.stepLr({ stepSize: 2, gamma: 0.5 }));
    s2.loadStateDict(state);
    expect(s2.getLastLr()).toEqual([5e-5, 5e-3]);
    s.step();
    s2.step();
    expect(s2.getLastLr()).toEqual(s.getLastLr());
    expect(() => s2.loadStateDict({ t: -1 })).toThrow(core.ConfigError);
    expect(() => new O.LrScheduler(opt, 3 as never)).toThrow(/LrScheduler\.schedule/);
    expect(() => new O.LrScheduler(opt, () => Number.NaN)).toThrow(/finite learning rate/);
    tf.dispose([a, b]);
  });
});
