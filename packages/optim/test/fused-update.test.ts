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

/** Runs with the backend's fused kernel in place (counting its calls), then with it unregistered. */
function fusedAndComposite(kernel: string, make: (params: Variable[]) => Optimizer, tag: string) {
  const backend = tf.getBackend();
  const config = tf.getKernel(kernel, backend)!;
  let calls = 0;
  tf.unregisterKernel(kernel, backend);
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      calls++;
      return config.kernelFunc(args);
    },
  });
  let fused: Float32Array[][];
  try {
    fused = trajectory(make, `${tag}_fused`);
  } finally {
    tf.unregisterKernel(kernel, backend);
  }
  let composite: Float32Array[][];
  try {
    composite = trajectory(make, `${tag}_composite`);
  } finally {
    tf.registerKernel(config);
  }
  return { fused, composite, calls };
}

function expectSameTrajectory(fused: Float32Array[][], composite: Float32Array[][], start: Float32Array[]): void {
  let moved = 0;
  for (let step = 0; step < STEPS; step++) {
    for (let i = 0; i < SHAPES.length; i++) {
      const a = fused[step][i];
      const b = composite[step][i];
      expect(a.length).toBe(b.length);
      for (let j = 0; j < a.length; j++) {
        // float32 rounding of values of order one: both paths round the same operations.
        const tol = 1e-6 * Math.max(1, Math.abs(b[j]));
        if (!(Math.abs(a[j] - b[j]) <= tol)) {
          expect.fail(`step ${step + 1}, parameter ${i}, element ${j}: fused ${a[j]} vs op-by-op ${b[j]}`);
        }
      }
    }
  }
  for (let i = 0; i < SHAPES.length; i++) moved = Math.max(moved, Math.abs(fused[STEPS - 1][i][0] - start[i][0]));
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

describe('fused Adam update (ADAM_UPDATE_KERNEL) against the op-by-op Adam', () => {
  const cases: [string, (ps: Variable[]) => Optimizer][] = [
    ['Adam', (ps) => new O.Adam(ps, { lr: 1e-2 })],
    ['Adam, L2 weight decay, AMSGrad', (ps) => new O.Adam(ps, { lr: 3e-2, weightDecay: 0.1, amsgrad: true, beta1: 0.8, beta2: 0.99, eps: 1e-6 })],
    ['AdamW (decoupled decay)', (ps) => new O.AdamW(ps, { lr: 1e-2, weightDecay: 0.05 })],
    ['AdamW, AMSGrad', (ps) => new O.AdamW(ps, { lr: 1e-2, weightDecay: 0.2, amsgrad: true })],
    ['Adam, two groups', (ps) => new O.Adam([{ params: ps.slice(0, 2), lr: 5e-3 }, { params: ps.slice(2), lr: 2e-2, weightDecay: 1e-3 }])],
  ];
  beforeEach((ctx) => needsKernel(ctx, core.ADAM_UPDATE_KERNEL));
  it.each(cases)('%s: same parameters at each of 60 steps', (name, make) => {
    const { fused, composite, calls } = fusedAndComposite(core.ADAM_UPDATE_KERNEL, make, name.replace(/\W+/g, '_'));
    expect(calls).toBe(STEPS * SHAPES.length);
    expectSameTrajectory(fused, composite, initial());
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
