/**
 * The fused optimizer updates a backend may register (@kiln/core's ADAM_UPDATE_KERNEL and
 * SGD_UPDATE_KERNEL; the WASM backend does while its oneDNN addon is loaded) against this
 * package's own op-by-op updates: the same parameters, the same gradients, step by step for many
 * steps, once through the kernel and once with it unregistered. Both compute the same float32
 * operations in the same order, so they must agree to float32 rounding at every step.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestContext } from 'vitest';
import { requireOrSkip, whenDnnlOff } from '../../../tools/testing/require-or-skip.js';
import type { Tensor } from '@kiln/core';
import { O, core, tf, useWasm, type Optimizer, type Variable } from './support.js';

beforeAll(useWasm);

const STEPS = 60;
/** Shapes of the parameters: a filter, a bias, a scalar and one large enough to be split between threads. */
const SHAPES = [[3, 3, 4, 8], [8], [1], [300, 130]];

function makeParams(tag: string): Variable[] {
  return SHAPES.map((shape, i) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', 100 + i), true, `fused_${tag}_${i}`));
}

/** Runs `make` for STEPS steps on gradients seeded by step and parameter; returns each step's parameters. */
function trajectory(make: (params: Variable[]) => Optimizer, tag: string): Float32Array[][] {
  const params = makeParams(tag);
  const opt = make(params);
  const out: Float32Array[][] = [];
  for (let step = 0; step < STEPS; step++) {
    // Gradients of varied scale, with zeros (the scalar every 7th step) as training produces them.
    const grads = tf.tidy(() =>
      Object.fromEntries(params.map((p, i) => [p.name, step % 7 === 0 && i === 2 ? tf.zerosLike(p) : tf.randomNormal(p.shape, 0, 10 ** ((step % 5) - 2), 'float32', 1000 * step + i + 1)])),
    );
    opt.step(grads);
    tf.dispose(Object.values(grads));
    out.push(params.map((p) => p.dataSync() as Float32Array));
  }
  opt.dispose();
  tf.dispose(params);
  return out;
}

/**
 * Runs `fn` with the kernels in `counted` wrapped to count their calls and those in `removed`
 * unregistered (the optimizers then take their next path), and puts every kernel back afterwards.
 */
function withKernels<T>(counted: string[], removed: string[], fn: () => T): { result: T; calls: Record<string, number> } {
  const backend = tf.getBackend();
  const configs = new Map([...counted, ...removed].map((k) => [k, tf.getKernel(k, backend)!]));
  const calls: Record<string, number> = Object.fromEntries(counted.map((k) => [k, 0]));
  for (const [k, config] of configs) {
    tf.unregisterKernel(k, backend);
    if (removed.includes(k)) continue;
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        calls[k]++;
        return config.kernelFunc(args);
      },
    });
  }
  try {
    return { result: fn(), calls };
  } finally {
    for (const [k, config] of configs) {
      if (!removed.includes(k)) tf.unregisterKernel(k, backend);
      tf.registerKernel(config);
    }
  }
}

/** Runs with the backend's fused kernel in place (counting its calls), then with it unregistered. */
function fusedAndComposite(kernel: string, make: (params: Variable[]) => Optimizer, tag: string) {
  const fused = withKernels([kernel], [], () => trajectory(make, `${tag}_fused`));
  const composite = withKernels([], [kernel], () => trajectory(make, `${tag}_composite`));
  return { fused: fused.result, composite: composite.result, calls: fused.calls[kernel] };
}

/** Bit-for-bit equality of two trajectories. */
function expectBitIdentical(a: Float32Array[][], b: Float32Array[][]): void {
  expect(a.length).toBe(b.length);
  for (let step = 0; step < a.length; step++) {
    for (let i = 0; i < a[step].length; i++) {
      const x = new Uint32Array(a[step][i].buffer, a[step][i].byteOffset, a[step][i].length);
      const y = new Uint32Array(b[step][i].buffer, b[step][i].byteOffset, b[step][i].length);
      if (!x.every((v, j) => v === y[j])) expect.fail(`step ${step + 1}, parameter ${i}: the multi-parameter kernel differs from the per-parameter one`);
    }
  }
}

function expectSameTrajectory(fused: Float32Array[][], composite: Float32Array[][], start: Float32Array[]): void {
  let moved = 0;
  const steps = fused.length;
  expect(composite.length).toBe(steps);
  for (let step = 0; step < steps; step++) {
    for (let i = 0; i < SHAPES.length; i++) {
      const a = fused[step][i];
      const b = composite[step][i];
      expect(a.length).toBe(b.length);
      for (let j = 0; j < a.length; j++) {
        // Bit for bit: both paths round the same float32 operations in the same order (the native
        // loops vectorised, with nothing contracted into an FMA).
        if (!Object.is(a[j], b[j])) {
          expect.fail(`step ${step + 1}, parameter ${i}, element ${j}: fused ${a[j]} vs op-by-op ${b[j]}`);
        }
      }
    }
  }
  for (let i = 0; i < SHAPES.length; i++) moved = Math.max(moved, Math.abs(fused[steps - 1][i][0] - start[i][0]));
  // The comparison means something only if the updates moved the weights.
  expect(moved).toBeGreaterThan(1e-3);
}

function needsKernel(ctx: TestContext, kernel: string): void {
  requireOrSkip(ctx, tf.getKernel(kernel, tf.getBackend()) == null && `the ${tf.getBackend()} backend registers no ${kernel} (oneDNN addon not loaded)`, whenDnnlOff);
}

const initial = (): Float32Array[] => {
  const ps = makeParams('initial');
  const values = ps.map((p) => p.dataSync() as Float32Array);
  tf.dispose(ps);
  return values;
};

describe('fused Adam updates (ADAM_UPDATE_MULTI_KERNEL, ADAM_UPDATE_KERNEL) against the op-by-op Adam', () => {
  // [name, optimizer, number of parameter groups]
  const cases: [string, (ps: Variable[]) => Optimizer, number][] = [
    ['Adam', (ps) => new O.Adam(ps, { lr: 1e-2 }), 1],
    ['Adam, L2 weight decay, AMSGrad', (ps) => new O.Adam(ps, { lr: 3e-2, weightDecay: 0.1, amsgrad: true, beta1: 0.8, beta2: 0.99, eps: 1e-6 }), 1],
    ['AdamW (decoupled decay)', (ps) => new O.AdamW(ps, { lr: 1e-2, weightDecay: 0.05 }), 1],
    ['AdamW, AMSGrad', (ps) => new O.AdamW(ps, { lr: 1e-2, weightDecay: 0.2, amsgrad: true }), 1],
    ['Adam, two groups', (ps) => new O.Adam([{ params: ps.slice(0, 2), lr: 5e-3 }, { params: ps.slice(2), lr: 2e-2, weightDecay: 1e-3 }]), 2],
  ];
  const MULTI = core.ADAM_UPDATE_MULTI_KERNEL;
  const SINGLE = core.ADAM_UPDATE_KERNEL;
  beforeEach((ctx) => {
    needsKernel(ctx, SINGLE);
    needsKernel(ctx, MULTI);
  });
  it.each(cases)('%s: one kernel call per group, bit-identical to one per parameter, and the op-by-op parameters at each of 60 steps', (name, make, groups) => {
    const tag = name.replace(/\W+/g, '_');
    const multi = withKernels([MULTI, SINGLE], [], () => trajectory(make, `${tag}_multi`));
    const single = withKernels([SINGLE], [MULTI], () => trajectory(make, `${tag}_single`));
    const composite = withKernels([], [MULTI, SINGLE], () => trajectory(make, `${tag}_composite`));
    expect(multi.calls).toEqual({ [MULTI]: STEPS * groups, [SINGLE]: 0 });
    expect(single.calls[SINGLE]).toBe(STEPS * SHAPES.length);
    expectBitIdentical(multi.result, single.result);
    expectSameTrajectory(single.result, composite.result, initial());
  });

  it('rejects a call whose inputs or step counts do not match its count, naming the input', () => {
    const [a, b] = [tf.ones([3]), tf.ones([4])];
    const attrs = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false };
    const inputs = { param0: a, grad0: a, expAvg0: a, expAvgSq0: a, param1: a, grad1: b, expAvg1: a, expAvgSq1: a };
    const run = (ins: Record<string, Tensor>, extra: Record<string, unknown>) => () => tf.engine().runKernel(MULTI, ins, { ...attrs, ...extra } as never);
    expect(run(inputs, { count: 2, steps: [1] })).toThrow(core.ShapeMismatchError);
    expect(run(inputs, { count: 2, steps: [1, 1] })).toThrow(/parameter 1: grad/);
    expect(run({ param0: a, grad0: a, expAvg0: a }, { count: 1, steps: [1] })).toThrow(/expAvgSq0/);
    tf.dispose([a, b]);
  });

  it('a parameter without a gradient is left out of the call, and step counts stay per parameter', () => {
    // Parameter 3 gets gradients only from step 3 on, so its t lags the others' by two.
    const params = makeParams('lagging');
    // Seeds from 1: tfjs treats a seed of 0 as none.
    const run = (removed: string[]) =>
      withKernels([MULTI, SINGLE].filter((k) => !removed.includes(k)), removed, () => {
        const ps = params.map((p, i) => tf.variable(p.clone(), true, `lagging_${removed.length}_${i}`));
        const opt = new O.Adam(ps, { lr: 1e-2 });
        for (let step = 0; step < 6; step++) {
          const grads = tf.tidy(() => Object.fromEntries(ps.filter((_, i) => i !== 3 || step >= 2).map((p, i) => [p.name, tf.randomNormal(p.shape, 0, 1, 'float32', 50 * step + i + 1)])));
          opt.step(grads);
          tf.dispose(Object.values(grads));
        }
        const values = ps.map((p) => p.dataSync() as Float32Array);
        opt.dispose();
        tf.dispose(ps);
        return values;
      });
    const runs = [run([]), run([MULTI]), run([MULTI, SINGLE])];
    expect(runs[0].calls).toEqual({ [MULTI]: 6, [SINGLE]: 0 });
    expectBitIdentical([runs[0].result], [runs[1].result]);
    // The lagging parameter's bias corrections use its own t: the op-by-op path agrees.
    expectSameTrajectory([runs[1].result], [runs[2].result], params.map((p) => p.dataSync() as Float32Array));
    tf.dispose(params);
  });
});

describe('fused SGD update (SGD_UPDATE_KERNEL) against the op-by-op SGD', () => {
  const cases: [string, (ps: Variable[]) => Optimizer][] = [
    ['plain SGD', (ps) => new O.SGD(ps, { lr: 0.05 })],
    ['momentum + L2 weight decay', (ps) => new O.SGD(ps, { lr: 0.02, momentum: 0.9, weightDecay: 1e-2 })],
    ['momentum + dampening', (ps) => new O.SGD(ps, { lr: 0.02, momentum: 0.8, dampening: 0.3 })],
    ['Nesterov', (ps) => new O.SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4 })],
  ];
  beforeEach((ctx) => needsKernel(ctx, core.SGD_UPDATE_KERNEL));
  it.each(cases)('%s: same parameters at each of 60 steps', (name, make) => {
    const { fused, composite, calls } = fusedAndComposite(core.SGD_UPDATE_KERNEL, make, name.replace(/\W+/g, '_'));
    expect(calls).toBe(STEPS * SHAPES.length);
    expectSameTrajectory(fused, composite, initial());
  });
});
