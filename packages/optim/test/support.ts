/**
 * Shared test support: the built CommonJS bundles (their tfjs engine is the one @kiln/core's CJS
 * entry holds; the ESM bundle cannot start WASM in Node), the PyTorch fixtures written by
 * tools/fixtures/optim/gen_optim.py, and the fixed least-squares problem they were made on.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const require = createRequire(import.meta.url);
export const core = require('@kiln/core') as typeof import('@kiln/core');
export const O = require('@kiln/optim') as typeof import('../src/index.js');
const backends = require('@kiln/backend-cpu') as typeof import('@kiln/backend-cpu');
export const { tf } = core;
export type Variable = import('@kiln/core').tf.Variable;
export type Scalar = import('@kiln/core').tf.Scalar;
export type Optimizer = import('../src/index.js').Optimizer;

/** Starts the default WASM backend (once per test file). */
export async function useWasm(): Promise<void> {
  await backends.wasmBackend().init();
}

export interface OptimCase {
  name: string;
  optimizer: 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' | 'Adagrad' | 'RAdam';
  options: Record<string, number | boolean | number[]>;
  groups: Record<string, number>[] | null;
  lookahead: [number, number] | null;
  /** When set, the optimizer starts with W alone and b joins as a second group at this step. */
  addBAt?: number;
  /** Trained with a per-step schedule (see lr-scheduler.test.ts). */
  scheduled?: boolean;
  W: number[];
  b: number[];
}

export interface ScheduleCase {
  name: string;
  lrs: number[][];
  metrics?: number[];
}

interface Fixture {
  steps: number;
  batch: number;
  X: number[];
  Y: number[];
  shapeX: [number, number];
  shapeY: [number, number];
  W0: number[];
  b0: number[];
  cases: OptimCase[];
  schedules: { bases: number[]; cases: ScheduleCase[] };
}

export const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../../tools/fixtures/optim/optim.json', import.meta.url)), 'utf8')) as Fixture;

export function optimCase(name: string): OptimCase {
  const c = fixture.cases.find((x) => x.name === name);
  if (!c) throw new Error(`no fixture case ${name}`);
  return c;
}

export function scheduleCase(name: string): ScheduleCase {
  const c = fixture.schedules.cases.find((x) => x.name === name);
  if (!c) throw new Error(`no schedule case ${name}`);
  return c;
}

let counter = 0;

/** The fixture's least-squares problem: W [5,3] and b [3] fitted to (X, Y) in mini-batches of 8. */
export class Problem {
  readonly W: Variable;
  readonly b: Variable;
  private readonly X = tf.tensor2d(fixture.X, fixture.shapeX);
  private readonly Y = tf.tensor2d(fixture.Y, fixture.shapeY);

  constructor() {
    const id = counter++;
    const [, d] = fixture.shapeX;
    const k = fixture.shapeY[1];
    this.W = tf.variable(tf.tensor2d(fixture.W0, [d, k]), true, `optim_test_W_${id}`);
    this.b = tf.variable(tf.tensor1d(fixture.b0), true, `optim_test_b_${id}`);
  }

  /** 0.5 · mean over the batch of the squared error summed over outputs, on batch number `step`. */
  loss(step: number): import('@kiln/core').tf.Scalar {
    return tf.tidy(() => {
      const n = fixture.shapeX[0];
      const lo = (step * fixture.batch) % n;
      const xb = tf.slice(this.X, [lo, 0], [fixture.batch, -1]);
      const yb = tf.slice(this.Y, [lo, 0], [fixture.batch, -1]);
      const err = tf.sub(tf.add(tf.matMul(xb, this.W), this.b), yb);
      return tf.mul(0.5, tf.mean(tf.sum(tf.square(err), 1))) as import('@kiln/core').tf.Scalar;
    });
  }

  /** Takes `count` optimizer steps starting at batch `from`, stepping `scheduler` after each. */
  train(opt: Optimizer, count: number, from = 0, scheduler?: { step(): void }): void {
    for (let s = from; s < from + count; s++) {
      const { value, grads } = tf.variableGrads(() => this.loss(s), [this.W, this.b]);
      opt.step(grads);
      scheduler?.step();
      tf.dispose([value, ...Object.values(grads)]);
    }
  }

  dispose(): void {
    tf.dispose([this.W, this.b, this.X, this.Y]);
  }
}

const OPTION_NAMES: Record<string, string> = {
  weight_decay: 'weightDecay',
  lr_decay: 'lrDecay',
  initial_accumulator_value: 'initialAccumulatorValue',
};

/** PyTorch keyword arguments in Kiln's names (betas → beta1/beta2, snake_case → camelCase). */
export function kilnOptions(torch: Record<string, unknown>): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(torch)) {
    if (k === 'betas') [out.beta1, out.beta2] = v as number[];
    else out[OPTION_NAMES[k] ?? k] = v as number | boolean;
  }
  return out;
}

/** Builds the Kiln optimizer a fixture case describes, over the problem's variables. */
export function makeOptimizer(c: OptimCase, p: Problem): Optimizer {
  const ctor = { SGD: O.SGD, Adam: O.Adam, AdamW: O.AdamW, RMSprop: O.RMSprop, Adagrad: O.Adagrad, RAdam: O.RAdam }[c.optimizer] as unknown as new (params: unknown, options: unknown) => Optimizer;
  const params = c.addBAt !== undefined ? [{ params: [p.W], ...kilnOptions(c.groups![0]) }] : c.groups ? [{ params: [p.W], ...kilnOptions(c.groups[0]) }, { params: [p.b], ...kilnOptions(c.groups[1]) }] : [p.W, p.b];
  const inner = new ctor(params, kilnOptions(c.options));
  return c.lookahead ? new O.Lookahead(inner, { k: c.lookahead[0], alpha: c.lookahead[1] }) : inner;
}

/** Largest element-wise |a − b| / |b| (|b| floored at 1e-2, where float32 rounding of the gradient dominates). */
export function maxRelError(actual: ArrayLike<number>, expected: number[]): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), 1e-2));
  return worst;
}

/** Runs a fixture case for its 100 steps and checks W and b against PyTorch to 1e-5 relative. */
export function expectMatchesPytorch(name: string, tol = 1e-5): void {
  const c = optimCase(name);
  const p = new Problem();
  const opt = makeOptimizer(c, p);
  if (c.addBAt !== undefined) {
    p.train(opt, c.addBAt);
    opt.addParamGroup({ params: [p.b], ...kilnOptions(c.groups![1]) });
    p.train(opt, fixture.steps - c.addBAt, c.addBAt);
  } else {
    p.train(opt, fixture.steps);
  }
  const errW = maxRelError(p.W.dataSync(), c.W);
  const errB = maxRelError(p.b.dataSync(), c.b);
  opt.dispose();
  p.dispose();
  expect(Math.max(errW, errB), `${name}: W error ${errW}, b error ${errB}`).toBeLessThan(tol);
}
