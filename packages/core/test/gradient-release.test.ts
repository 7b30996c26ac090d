import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
// tfjs's reference CPU backend. It loads a second copy of tfjs-core, but kernels, gradients and
// the engine live on globalThis, so it registers into (and runs on) @kiln/core's engine.
import '@tensorflow/tfjs-backend-cpu';

const FLAG = 'KILN_TAPE_RELEASE';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Runs `fn` with Kiln's releasing pass (`release`) or tfjs's original pass. */
function withPass<T>(release: boolean, fn: () => T): T {
  const before = tf.env().getBool(FLAG);
  tf.env().set(FLAG, release);
  try {
    return fn();
  } finally {
    tf.env().set(FLAG, before);
  }
}

/**
 * Runs `fn` under both passes and returns the values of what each returned, asserting that each
 * run left exactly its returned tensors alive (and nothing once they are disposed).
 */
function bothPasses(fn: () => tf.Tensor[]): { released: Float32Array[]; original: Float32Array[] } {
  const run = (release: boolean) => {
    const n0 = tf.memory().numTensors;
    const out = withPass(release, fn);
    expect(tf.memory().numTensors - n0).toBe(out.length);
    const values = out.map((t) => Float32Array.from(t.dataSync() as Float32Array));
    tf.dispose(out);
    expect(tf.memory().numTensors).toBe(n0);
    return values;
  };
  return { released: run(true), original: run(false) };
}

/** Exact equality, element by element (bit-identical floats; NaN never appears here). */
function expectBitIdentical(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    expect(new Uint32Array(a[i].buffer)).toEqual(new Uint32Array(b[i].buffer));
  }
}

describe('the releasing gradient pass', () => {
  it('is on by default and switched by the KILN_TAPE_RELEASE flag and environment variable', () => {
    expect(tf.env().getBool(FLAG)).toBe(true);
    const env = process.env[FLAG];
    // What the flag defaults to when the environment is read (tfjs caches it after the first read).
    const evaluate = () => tf.env()['evaluateFlag'](FLAG);
    try {
      process.env[FLAG] = '0';
      expect(evaluate()).toBe(false);
      process.env[FLAG] = '1';
      expect(evaluate()).toBe(true);
    } finally {
      if (env === undefined) delete process.env[FLAG];
      else process.env[FLAG] = env;
    }
  });

  it('gives bit-identical gradients for a conv net with batch norm and a residual add (variableGrads)', () => {
    const vars = tf.tidy(() => ({
      w1: tf.variable(tf.randomNormal([3, 3, 2, 4], 0, 0.4, 'float32', 1), true, 'gr.w1'),
      w2: tf.variable(tf.randomNormal([3, 3, 4, 4], 0, 0.4, 'float32', 2), true, 'gr.w2'),
      proj: tf.variable(tf.randomNormal([1, 1, 2, 4], 0, 0.4, 'float32', 3), true, 'gr.proj'),
      gamma: tf.variable(tf.randomUniform([4], 0.5, 1.5, 'float32', 4), true, 'gr.gamma'),
      beta: tf.variable(tf.randomNormal([4], 0, 0.1, 'float32', 5), true, 'gr.beta'),
      fc: tf.variable(tf.randomNormal([16, 3], 0, 0.4, 'float32', 6), true, 'gr.fc'),
    }));
    const x = tf.randomNormal<tf.Rank.R4>([2, 4, 4, 2], 0, 1, 'float32', 7);
    const labels = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
    const loss = () => {
      const h = tf.conv2d(x, vars.w1 as tf.Tensor4D, 1, 'same');
      const { mean, variance } = tf.moments(h, [0, 1, 2]);
      const a = tf.relu(tf.batchNorm(h, mean, variance, vars.beta, vars.gamma, 1e-5));
      const h2 = tf.conv2d(a as tf.Tensor4D, vars.w2 as tf.Tensor4D, 1, 'same');
      const res = tf.relu(tf.add(h2, tf.conv2d(x, vars.proj as tf.Tensor4D, 1, 'same')));
      const pooled = tf.avgPool(res as tf.Tensor4D, 2, 2, 'valid').reshape([2, 16]);
      return tf.losses.softmaxCrossEntropy(labels, tf.matMul(pooled, vars.fc)) as tf.Scalar;
    };
    const names = Object.keys(vars);
    const { released, original } = bothPasses(() => {
      const { value, grads } = tf.variableGrads(loss);
      return [value, ...names.map((n) => grads[`gr.${n}`])];
    });
    expect(released).toHaveLength(names.length + 1);
    expect(released.slice(1).every((g) => g.some((v) => v !== 0))).toBe(true);
    expectBitIdentical(released, original);
    tf.dispose([x, labels, ...Object.values(vars)]);
  });

  it('gives bit-identical gradients for inputs several ops share (tf.grads)', () => {
    const a = tf.tensor2d([0.3, -1.2, 2.0, 0.7], [2, 2]);
    const b = tf.tensor2d([1.5, 0.4, -0.6, 0.9], [2, 2]);
    const f = (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.add(tf.add(tf.mul(p, q), tf.mul(p, p)), tf.add(tf.mul(tf.sin(p), q), tf.exp(tf.matMul(q, p)))));
    const { released, original } = bothPasses(() => tf.grads(f)([a, b]));
    expectBitIdentical(released, original);
    // d/dp of sum(p*q + p*p) alone is q + 2p: a closed form for the shared-input accumulation.
    const simple = bothPasses(() => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.add(tf.mul(p, q), tf.mul(p, p))))([a, b]));
    expectBitIdentical(simple.released, simple.original);
    const [av, bv] = [a.dataSync(), b.dataSync()];
    expect(Array.from(simple.released[0])).toEqual(Array.from(av, (v, i) => Math.fround(bv[i] + Math.fround(2 * v))));
    expect(Array.from(simple.released[1])).toEqual(Array.from(av));
    tf.dispose([a, b]);
  });

  it('gives bit-identical gradients through ops with several outputs, some unused (valueAndGrads)', () => {
    const x = tf.randomNormal([3, 6], 0, 1, 'float32', 11);
    const { released, original } = bothPasses(() => {
      const { value, grads } = tf.valueAndGrads((t: tf.Tensor) => {
        const [r0, , r2] = tf.unstack(t); // one Unpack, three outputs, the middle one unused
        const [c0, c1] = tf.split(tf.mul(t, 2), [2, 4], 1); // SplitV, both used
        return tf.add(tf.sum(tf.mul(r0, r2)), tf.sum(tf.tanh(c1))).add(tf.sum(tf.square(c0)));
      })([x]);
      return [value, ...grads];
    });
    expectBitIdentical(released, original);
    // The unused row gets a zero gradient except through the SplitV branch (2 * 2 * c0 or tanh').
    expect(released[1].length).toBe(18);
    x.dispose();
  });

  it('gives bit-identical gradients through customGrad, including a gradient that returns dy for two inputs', () => {
    const a = tf.tensor1d([0.5, -1.0, 2.0]);
    const b = tf.tensor1d([1.5, 0.25, -0.75]);
    // A product with its gradient written by hand, using the tensors it saved.
    const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [p, q, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([p, q]);
      return { value: tf.mul(p, q), gradFunc: (dy: tf.Tensor, [sp, sq]: tf.Tensor[]) => [tf.mul(dy, sq), tf.mul(dy, sp)] };
    });
    // A sum whose gradient hands the very same dy tensor to both inputs.
    const passSum = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [p, q] = args as [tf.Tensor, tf.Tensor];
      return { value: tf.add(p, q), gradFunc: (dy: tf.Tensor) => [dy, dy] };
    });
    const f = (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(passSum(tf.sin(product(p, q) as tf.Tensor), tf.cos(q)) as tf.Tensor));
    const { released, original } = bothPasses(() => tf.grads(f)([a, b]));
    expectBitIdentical(released, original);
    // Against the closed form: s = sin(pq) + cos(q); df/dp = 2s cos(pq) q, df/dq = 2s (cos(pq) p - sin(q)).
    const [av, bv] = [a.dataSync(), b.dataSync()];
    av.forEach((p, i) => {
      const q = bv[i];
      const s = Math.sin(p * q) + Math.cos(q);
      expect(released[0][i]).toBeCloseTo(2 * s * Math.cos(p * q) * q, 5);
      expect(released[1][i]).toBeCloseTo(2 * s * (Math.cos(p * q) * p - Math.sin(q)), 5);
    });
    tf.dispose([a, b]);
  });

  it('gives bit-identical second and third derivatives (nested tf.grad)', () => {
    const x = tf.tensor1d([-1.3, 0.2, 0.9, 2.1]);
    const f = (t: tf.Tensor) => tf.mul(tf.pow(t, 3), tf.sin(t));
    const d2 = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.grad(f)(u))(t);
    const { released, original } = bothPasses(() => [d2(x), tf.grad(d2)(x)]);
    expectBitIdentical(released, original);
    // f'' = 6x sin x + 6x² cos x - x³ sin x
    x.dataSync().forEach((v, i) => {
      expect(released[0][i]).toBeCloseTo(6 * v * Math.sin(v) + 6 * v * v * Math.cos(v) - v ** 3 * Math.sin(v), 4);
    });
    x.dispose();
  });

  it('lowers the peak of live tensor bytes during the backward pass of a deep chain', () => {
    const depth = 24;
    const ws = Array.from({ length: depth }, (_, i) => tf.variable(tf.randomNormal([32, 32], 0, 0.2, 'float32', 100 + i), true, `chain.${i}`));
    const x = tf.randomNormal([64, 32], 0, 1, 'float32', 99);
    // An identity whose gradient samples the engine's live tensor bytes as the backward pass
    // reaches it: one sample per layer, from the top layer down.
    let samples: number[] = [];
    const probe = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.clone(args[0] as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => {
        samples.push(tf.memory().numBytes);
        return dy;
      },
    }));
    const loss = () => tf.sum(ws.reduce<tf.Tensor>((h, w) => probe(tf.tanh(tf.matMul(h, w))) as tf.Tensor, x)) as tf.Scalar;
    const peak = (release: boolean) => {
      samples = [];
      const n0 = tf.memory().numTensors;
      const base = tf.memory().numBytes;
      const { value, grads } = withPass(release, () => tf.variableGrads(loss));
      const g = Object.values(grads).map((t) => Array.from(t.dataSync()));
      tf.dispose([value, grads]);
      expect(tf.memory().numTensors).toBe(n0);
      expect(samples).toHaveLength(depth);
      return { peak: Math.max(...samples) - base, last: samples[depth - 1] - base, g };
    };
    const released = peak(true);
    const original = peak(false);
    expect(released.g).toEqual(original.g);
    // tfjs's pass holds every saved activation and every intermediate's gradient to the end, so
    // its live bytes grow layer by layer and peak at the bottom; the releasing pass frees a
    // layer's saved tensors and gradients as it leaves it, so it peaks near the top at about
    // the saved activations alone, half of tfjs's peak.
    expect(original.last).toBe(original.peak);
    expect(released.last).toBeLessThan(released.peak);
    expect(released.peak).toBeLessThan(original.peak * 0.6);
    tf.dispose([x, ...ws]);
  });
});
