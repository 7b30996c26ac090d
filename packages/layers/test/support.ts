/**
 * Shared test support: the built CommonJS bundles (their tfjs engine is the one @kiln/core's CJS
 * entry holds; the ESM bundle cannot start WASM in Node), PyTorch fixtures with layout conversion,
 * finite-difference gradient checks and `runLayerContractTest()`, which every layer runs.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const require = createRequire(import.meta.url);
export const core = require('@kiln/core') as typeof import('@kiln/core');
export const L = require('@kiln/layers') as typeof import('../src/index.js');
export const backends = require('@kiln/backend-cpu') as typeof import('@kiln/backend-cpu');
export const { tf } = core;
export type Tensor = import('@kiln/core').Tensor;
export type Scalar = import('@kiln/core').tf.Scalar;
export type Tensor4D = import('@kiln/core').tf.Tensor4D;
export type Module = import('../src/index.js').Module;

/** Starts the default WASM backend (once per test file). */
export async function useWasm(): Promise<void> {
  await backends.wasmBackend().init();
}

/**
 * Deterministic distinct values in (-1, 1): a seeded shuffle of an even grid, so any two values
 * differ by at least 2/n and none is closer than 1/n to zero. Finite differences then never cross
 * a kink (ReLU at 0, ties in a max) when eps < 1/n.
 */
export function seeded(shape: number[], seed = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const rng = new core.Rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (2 * i + 1) / n - 1;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return tf.tensor(v, shape);
}

// ---- PyTorch fixtures ----

export interface Fx {
  shape: number[];
  data: number[];
}
const fixturePath = fileURLToPath(new URL('../../../tools/fixtures/layers/layers.json', import.meta.url));
export const fixtures: any = JSON.parse(readFileSync(fixturePath, 'utf8'));

/** A fixture tensor as stored (PyTorch layout). */
export const raw = (f: Fx): Tensor => tf.tensor(f.data, f.shape);

/** Channels-first activation (NCL, NCHW, NCDHW) → channels-last. */
export function toChannelsLast(f: Fx): Tensor {
  const r = f.shape.length;
  const perm = [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1];
  return tf.tidy(() => tf.transpose(raw(f), perm));
}

/** PyTorch conv weight [O, I, ...k] → Kiln's [...k, I, O]. */
export function toKernelLast(f: Fx): Tensor {
  const r = f.shape.length;
  const perm = [...Array.from({ length: r - 2 }, (_, i) => i + 2), 1, 0];
  return tf.tidy(() => tf.transpose(raw(f), perm));
}

/** Asserts |a − b| ≤ tol·(1 + |b|) elementwise, reporting the worst element. */
export function expectClose(actual: Tensor, expected: Tensor, tol = 1e-5, label = ''): void {
  expect(actual.shape, `${label} shape`).toEqual(expected.shape);
  const a = actual.dataSync();
  const b = expected.dataSync();
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${label}: worst relative error at ${at}: ${a[at]} vs ${b[at]}`).toBeLessThanOrEqual(tol);
}

/** Output and gradients of sum(f(...) · cot) with respect to each input. */
export function valueAndGrads(f: (...xs: Tensor[]) => Tensor, xs: Tensor[], cot: Tensor): { y: Tensor; grads: Tensor[] } {
  const g = tf.grads((...args: Tensor[]) => tf.sum(tf.mul(f(...args), cot)));
  const grads = g(xs);
  const y = tf.tidy(() => f(...xs));
  return { y, grads };
}

/** Output, input gradient and weight/bias gradients of a PyTorch case, to 1e-5. */
export function checkAgainstTorch(m: Module & { weight?: any; bias?: any }, c: any, label: string): void {
  m.weight?.assign(tf.tidy(() => raw(c.w)));
  m.bias?.assign(tf.tidy(() => raw(c.b)));
  const x = toChannelsLast(c.x);
  const cot = toChannelsLast(c.cot);
  const { y, grads } = valueAndGrads((v) => m.forward(v), [x], cot);
  expectClose(y, toChannelsLast(c.y), 1e-5, `${label} y`);
  expectClose(grads[0], toChannelsLast(c.g_x), 1e-5, `${label} dx`);
  tf.dispose([y, ...grads]);
  if (m.weight) {
    const { grads: pg } = tf.variableGrads(() => tf.sum(tf.mul(m.forward(x), cot)) as Scalar, [m.weight.variable, m.bias.variable]);
    const gw = raw(c.g_w);
    const gb = raw(c.g_b);
    expectClose(pg[m.weight.variable.name], gw, 1e-5, `${label} dweight`);
    expectClose(pg[m.bias.variable.name], gb, 1e-5, `${label} dbias`);
    tf.dispose([gw, gb, ...Object.values(pg)]);
  }
  tf.dispose([x, cot]);
}

// ---- finite differences ----

/**
 * Checks the analytic gradient of sum(f(x)·cot) against central differences, on the CPU reference
 * backend in float32. `eps` ~1e-2 keeps round-off small; kinks (ReLU, max) must be avoided by the
 * caller's choice of inputs.
 */
export function checkGradient(f: (x: Tensor) => Tensor, x: Tensor, options: { eps?: number; tol?: number; seed?: number; label?: string } = {}): void {
  const eps = options.eps ?? 1e-2;
  const tol = options.tol ?? 2e-3;
  tf.tidy(() => {
    const y0 = f(x);
    const cot = seeded(y0.shape, options.seed ?? 7);
    const loss = (v: Tensor) => tf.sum(tf.mul(f(v), cot));
    const analytic = tf.grad(loss)(x).dataSync();
    const base = x.dataSync().slice();
    const numeric = new Float32Array(base.length);
    // Sample at most 24 coordinates so the check stays fast on bigger inputs.
    const step = Math.max(1, Math.floor(base.length / 24));
    let worst = 0;
    for (let i = 0; i < base.length; i += step) {
      const plus = base.slice();
      plus[i] += eps;
      const minus = base.slice();
      minus[i] -= eps;
      const lp = loss(tf.tensor(plus, x.shape)).dataSync()[0];
      const lm = loss(tf.tensor(minus, x.shape)).dataSync()[0];
      numeric[i] = (lp - lm) / (2 * eps);
      const scale = Math.max(1, Math.abs(numeric[i]), Math.abs(analytic[i]));
      worst = Math.max(worst, Math.abs(numeric[i] - analytic[i]) / scale);
    }
    expect(worst, `${options.label ?? 'gradient'}: finite differences disagree`).toBeLessThanOrEqual(tol);
  });
}

/** Finite-difference check of d sum(m(x)·cot) / d parameter for every trainable parameter. */
export function checkParameterGradients(m: Module, x: Tensor, options: { eps?: number; tol?: number } = {}): void {
  const eps = options.eps ?? 1e-2;
  const tol = options.tol ?? 2e-3;
  tf.tidy(() => {
    const cot = seeded(m.forward(x).shape, 5);
    const loss = () => tf.sum(tf.mul(m.forward(x), cot)) as Scalar;
    for (const [name, p] of m.namedParameters()) {
      if (!p.trainable) continue;
      const v = p.variable;
      const analytic = tf.variableGrads(loss, [v]).grads[v.name].dataSync();
      const base = v.dataSync().slice();
      const step = Math.max(1, Math.floor(base.length / 12));
      let worst = 0;
      for (let i = 0; i < base.length; i += step) {
        const at = (d: number) => {
          const w = base.slice();
          w[i] += d;
          v.assign(tf.tensor(w, v.shape));
          return loss().dataSync()[0];
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        worst = Math.max(worst, Math.abs(numeric - analytic[i]) / Math.max(1, Math.abs(numeric), Math.abs(analytic[i])));
      }
      v.assign(tf.tensor(base, v.shape));
      expect(worst, `${m.typeName}.${name}: finite differences disagree`).toBeLessThanOrEqual(tol);
    }
  });
}

/** Runs `fn` on the pure-JS CPU backend, then restores the previous one. */
export async function onCpu<T>(fn: () => T): Promise<T> {
  const prev = tf.getBackend();
  await backends.cpuBackend().init();
  try {
    return fn();
  } finally {
    await tf.setBackend(prev);
  }
}

// ---- the layer contract ----

export interface LayerContract {
  /** Makes a fresh layer (called more than once). */
  make: () => Module;
  /** Input shape for one forward pass. */
  input: number[];
  /** Expected output shape. */
  output: number[];
  /** Expected number of parameter values (trainable + frozen). */
  params: number;
  /** Expected buffer names (state dict keys that are not parameters). */
  buffers?: string[];
  /** A shape the layer must reject with a ShapeMismatchError naming its path. */
  badInput?: number[];
  /** What the error's location must contain: the layer's type by default, a child's path for containers. */
  badInputWhere?: string;
  /**
   * Finite-difference check of input and parameter gradients in eval mode (default on, eps 1e-2);
   * `false` only for layers with no gradient to check.
   */
  gradCheck?: { eps?: number; tol?: number } | false;
}

/**
 * The contract every layer honours (after Keras's `run_layer_test`): output shape, parameter count,
 * state-dict round trip into a fresh instance (same outputs in eval mode), a training step that
 * changes every trainable parameter and lowers a loss, finite-difference gradients, wrong shapes
 * rejected with the layer's path, and no tensor leaks.
 */
export function runLayerContractTest(c: LayerContract): void {
  const before = tf.memory().numTensors;
  const m = c.make();
  const x = seeded(c.input, 3);
  const y = m.forward(x);
  expect(y.shape, `${m.typeName} output shape`).toEqual(c.output);
  y.dispose();
  expect(m.numParameters(), `${m.typeName} parameter count`).toBe(c.params);
  expect(
    m
      .namedBuffers()
      .map(([n]) => n)
      .sort(),
  ).toEqual([...(c.buffers ?? [])].sort());

  // Forward leaves exactly its output behind.
  const n0 = tf.memory().numTensors;
  tf.dispose(m.forward(x));
  expect(tf.memory().numTensors, `${m.typeName} forward leaks`).toBe(n0);

  // Config round trip: a layer that exposes `config` can be rebuilt from it.
  const config = (m as unknown as { config?: object }).config;
  if (config) {
    const Ctor = m.constructor as new (c: object) => Module;
    const rebuilt = new Ctor(JSON.parse(JSON.stringify(config)));
    expect((rebuilt as unknown as { config: object }).config, `${m.typeName} config round trip`).toEqual(config);
    expect(rebuilt.namedParameters().map(([n, p]) => [n, p.shape])).toEqual(m.namedParameters().map(([n, p]) => [n, p.shape]));
    rebuilt.dispose();
  }

  // State dict round trip.
  const other = c.make();
  const sd = m.stateDict();
  expect(Object.keys(other.stateDict()).sort()).toEqual(Object.keys(sd).sort());
  other.loadStateDict(sd);
  m.eval();
  other.eval();
  const ya = m.forward(x);
  const yb = other.forward(x);
  expectClose(yb, ya, 0, `${m.typeName} state-dict round trip`);
  tf.dispose([ya, yb]);
  other.dispose();
  m.train();

  // One gradient step on a loss lowers it and moves every trainable parameter.
  const vars = m.trainableVariables();
  if (vars.length > 0) {
    const target = seeded(c.output, 11);
    const lossFn = () => tf.mean(tf.square(tf.sub(m.forward(x), target))) as Scalar;
    m.eval();
    const l0 = tf.tidy(() => lossFn().dataSync()[0]);
    const { value, grads } = tf.variableGrads(lossFn, vars);
    for (const v of vars) {
      const g = grads[v.name];
      expect(g, `${m.typeName}: no gradient for ${v.name}`).toBeDefined();
      expect(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]), `${m.typeName}: zero gradient for a parameter`).toBeGreaterThan(0);
      tf.tidy(() => v.assign(tf.sub(v, tf.mul(g, 1e-3))));
    }
    const l1 = tf.tidy(() => lossFn().dataSync()[0]);
    expect(l1, `${m.typeName}: a small step against the gradient lowers the loss`).toBeLessThan(l0);
    tf.dispose([value, target, ...Object.values(grads)]);
    m.train();
  }

  if (c.gradCheck !== false) {
    m.eval();
    checkGradient((v) => m.forward(v), x, { ...c.gradCheck, label: `${m.typeName} input` });
    checkParameterGradients(m, x, c.gradCheck || {});
    m.train();
  }

  if (c.badInput) {
    const bad = tf.zeros(c.badInput);
    let err: unknown;
    try {
      tf.dispose(m.forward(bad));
    } catch (e) {
      err = e;
    }
    bad.dispose();
    expect(err, `${m.typeName} accepted input of shape [${c.badInput}]`).toBeInstanceOf(core.ShapeMismatchError);
    const se = err as InstanceType<typeof core.ShapeMismatchError>;
    expect(se.where).toContain(c.badInputWhere ?? m.typeName);
    expect(se.found).toBe(`[${c.badInput.join(', ')}]`);
    expect(se.expected).toBeTruthy();
  }
  x.dispose();
  m.dispose();
  expect(tf.memory().numTensors, 'tensors leaked by the contract test').toBe(before);
}
