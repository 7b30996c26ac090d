import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, fixture, scheduleCase } from './support.js';

beforeAll(useWasm);

type Schedule = import('../src/index.js').Schedule;

/** Each PyTorch scheduler configuration in the fixture, written with Kiln's schedules. */
const SCHEDULES: Record<string, Schedule> = {
  constant: O.constantLr({ factor: 0.5, totalIters: 4 }),
  step: O.stepLr({ stepSize: 7, gamma: 0.5 }),
  multi_step: O.multiStepLr({ milestones: [5, 12, 12, 30], gamma: 0.3 }),
  exponential: O.exponentialLr({ gamma: 0.95 }),
  inverse_sqrt: O.inverseSqrtLr({ k: 3 }),
  polynomial: O.polynomialLr({ totalIters: 40, power: 2 }),
  cosine: O.cosineAnnealingLr({ tMax: 25, etaMin: 0.001 }),
  cosine_restarts: O.cosineAnnealingWarmRestarts({ t0: 5, tMult: 2, etaMin: 0.001 }),
  cosine_restarts_tmult1: O.cosineAnnealingWarmRestarts({ t0: 7 }),
  linear: O.linearLr({ startFactor: 0.1, endFactor: 0.9, totalIters: 10 }),
  warmup_then_cosine: O.withWarmup(O.cosineAnnealingLr({ tMax: 40 }), { steps: 8, startFactor: 0.01 }),
  warmup_chained_exponential: O.chainedLr(O.linearLr({ startFactor: 0.2, totalIters: 6 }), O.exponentialLr({ gamma: 0.97 })),
  one_cycle_cos: O.oneCycleLr({ maxLr: [0.1, 0.02], totalSteps: 60 }),
  one_cycle_linear_three_phase: O.oneCycleLr({ maxLr: [0.1, 0.02], totalSteps: 60, pctStart: 0.25, annealStrategy: 'linear', divFactor: 10, finalDivFactor: 100, threePhase: true }),
  cyclic_triangular: O.cyclicLr({ baseLr: [0.01, 0.002], maxLr: [0.1, 0.02], stepSizeUp: 6 }),
  cyclic_triangular2_asym: O.cyclicLr({ baseLr: [0.01, 0.002], maxLr: [0.1, 0.02], stepSizeUp: 4, stepSizeDown: 8, mode: 'triangular2' }),
  cyclic_exp_range: O.cyclicLr({ baseLr: [0.01, 0.002], maxLr: [0.1, 0.02], stepSizeUp: 5, mode: 'exp_range', gamma: 0.97 }),
};

function expectSequence(actual: number[][], expected: number[][]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, t) =>
    row.forEach((lr, g) => {
      const e = expected[t][g];
      expect(Math.abs(lr - e), `t=${t} group ${g}: ${lr} vs PyTorch ${e}`).toBeLessThanOrEqual(1e-9 * Math.max(Math.abs(e), 1e-12));
    }),
  );
}

function twoGroupOptimizer(): import('../src/index.js').Optimizer {
  const [a, b] = fixture.schedules.bases.map((_, i) => tf.variable(tf.zeros([1]), true, `sched_${i}_${Math.random()}`));
  return new O.SGD(fixture.schedules.bases.map((lr, i) => ({ params: [[a, b][i]], lr })), { lr: 1, momentum: 0.9 });
}

describe('schedules match PyTorch’s schedulers step by step (two groups, base rates 0.1 and 0.02)', () => {
  it('covers every scheduler case in the fixture', () => {
    const plateau = ['plateau_min_rel', 'plateau_max_abs'];
    expect(fixture.schedules.cases.map((c) => c.name).sort()).toEqual([...Object.keys(SCHEDULES), ...plateau].sort());
  });

  it.each(Object.keys(SCHEDULES))('%s', (name) => {
    const c = scheduleCase(name);
    const opt = twoGroupOptimizer();
    const scheduler = new O.LrScheduler(opt, SCHEDULES[name]);
    const lrs: number[][] = [];
    for (let t = 0; t < c.lrs.length; t++) {
      lrs.push(scheduler.getLastLr());
      scheduler.step();
    }
    expectSequence(lrs, c.lrs);
    opt.paramGroups.forEach((g) => g.params.forEach((p) => p.dispose()));
    opt.dispose();
  });

  it.each([
    ['plateau_min_rel', { mode: 'min', factor: 0.5, patience: 2, threshold: 1e-4, cooldown: 1, minLr: [0.01, 0.004] }],
    ['plateau_max_abs', { mode: 'max', factor: 0.2, patience: 3, threshold: 0.001, thresholdMode: 'abs', cooldown: 2, minLr: 0.0001 }],
  ] as const)('%s (ReduceLROnPlateau)', (name, options) => {
    const c = scheduleCase(name);
    const opt = twoGroupOptimizer();
    const scheduler = new O.ReduceLROnPlateau(opt, { ...options, minLr: options.minLr as number | number[], monitor: 'val_metric' });
    const lrs: number[][] = [];
    c.metrics!.forEach((m) => {
      lrs.push(scheduler.getLastLr());
      scheduler.step({ val_metric: m, other: 0 });
    });
    expectSequence(lrs, c.lrs);
    expect(new Set(lrs.map((r) => r[0])).size).toBeGreaterThan(2);
    opt.paramGroups.forEach((g) => g.params.forEach((p) => p.dispose()));
    opt.dispose();
  });
});

describe('schedule formulas', () => {
  it('exponential is λ₀·γ^epoch and inverse square root is λ₀·k/√epoch past k² epochs', () => {
    const exp = O.exponentialLr({ gamma: 0.95 });
    expect(exp(10, 0.2, 0)).toBeCloseTo(0.2 * Math.pow(0.95, 10), 15);
    const inv = O.inverseSqrtLr({ k: 2 });
    expect(inv(0, 0.1, 0)).toBe(0.1);
    expect(inv(3, 0.1, 0)).toBe(0.1);
    expect(inv(16, 0.1, 0)).toBeCloseTo((0.1 * 2) / 4, 15);
  });

  it('sequentialLr restarts each schedule at its milestone', () => {
    const s = O.sequentialLr([O.constantLr({ factor: 0.5 }), O.stepLr({ stepSize: 2, gamma: 0.1 }), O.exponentialLr({ gamma: 0.5 })], [3, 7]);
    expect([0, 2, 3, 4, 5, 6, 7, 8].map((t) => s(t, 1, 0))).toEqual([0.5, 0.5, 1, 1, 0.1, 0.1, 1, 0.5]);
  });

  it('oneCycleLr refuses to run past totalSteps, telling how to size it', () => {
    const s = O.oneCycleLr({ totalSteps: 10 });
    expect(s(10, 1, 0)).toBeGreaterThanOrEqual(0);
    expect(() => s(11, 1, 0)).toThrow(/totalSteps/);
  });

  it('rejects invalid options, naming the argument', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => O.stepLr({ stepSize: 0 }), /stepLr\.stepSize/],
      [() => O.stepLr({ stepSize: 2, gamma: -1 }), /stepLr\.gamma/],
      [() => O.multiStepLr({ milestones: [-1] }), /multiStepLr\.milestones/],
      [() => O.exponentialLr({ gamma: Number.NaN }), /exponentialLr\.gamma/],
      [() => O.inverseSqrtLr({ k: 0 }), /inverseSqrtLr\.k/],
      [() => O.polynomialLr({ totalIters: 0 }), /polynomialLr\.totalIters/],
      [() => O.cosineAnnealingLr({ tMax: 10, etaMin: -1 }), /cosineAnnealingLr\.etaMin/],
      [() => O.cosineAnnealingWarmRestarts({ t0: 0 }), /cosineAnnealingWarmRestarts\.t0/],
      [() => O.linearLr({ startFactor: 2 }), /linearLr\.startFactor/],
      [() => O.sequentialLr([O.constantLr()], [3]), /sequentialLr\.milestones/],
      [() => O.withWarmup(O.constantLr(), { steps: 0 }), /withWarmup\.steps/],
      [() => O.oneCycleLr({ totalSteps: 10, pctStart: 2 }), /oneCycleLr\.pctStart/],
      [() => O.cyclicLr({ maxLr: -1 }), /cyclicLr\.maxLr/],
      [() => O.cyclicLr({ maxLr: 1, mode: 'sine' as never }), /cyclicLr\.mode/],
      [() => O.constantLr({ factor: 3 }), /constantLr\.factor/],
    ];
    for (const [make, arg] of cases) {
      expect(make).toThrow(core.ConfigError);
      expect(make).toThrow(arg);
    }
    expect(() => O.cyclicLr({ maxLr: [0.1] })(0, 0.01, 1)).toThrow(/cyclicLr\.maxLr/);
  });
});
