import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, tf, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

const { init } = L;

function stats(t: import('./support.js').Tensor): { mean: number; std: number; min: number; max: number } {
  const v = t.dataSync();
  let s = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of v) {
    s += x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = s / v.length;
  let q = 0;
  for (const x of v) q += (x - mean) ** 2;
  t.dispose();
  return { mean, std: Math.sqrt(q / v.length), min, max };
}

const rng = () => new core.Rng(42);
// A conv weight [kh, kw, in, out] = [3, 3, 64, 32]: fanIn = 576, fanOut = 288; 18432 draws, so
// sample std is within ~1% of the true one.
const W = [3, 3, 64, 32];
const FAN_IN = 576;
const FAN_OUT = 288;

describe('initializers', () => {
  it('fans follow PyTorch for HWIO and [in, out] layouts', () => {
    expect(init.fans(W)).toEqual({ fanIn: FAN_IN, fanOut: FAN_OUT });
    expect(init.fans([10, 4])).toEqual({ fanIn: 10, fanOut: 4 });
  });

  it('zeros, ones and constant (e.g. bias 0.01)', () => {
    expect(stats(init.zeros()([5]))).toMatchObject({ min: 0, max: 0 });
    expect(stats(init.ones()([5]))).toMatchObject({ min: 1, max: 1 });
    const c = stats(init.constant(0.01)([7]));
    expect(c.min).toBeCloseTo(0.01, 7);
    expect(c.max).toBeCloseTo(0.01, 7);
  });

  it('uniform and normal', () => {
    const u = stats(init.uniform(-0.3, 0.1)(W, rng()));
    expect(u.min).toBeGreaterThanOrEqual(-0.3);
    expect(u.max).toBeLessThanOrEqual(0.1);
    expect(u.mean).toBeCloseTo(-0.1, 2);
    expect(u.std).toBeCloseTo(0.4 / Math.sqrt(12), 2);
    const n = stats(init.normal(1, 0.5)(W, rng()));
    expect(n.mean).toBeCloseTo(1, 1);
    expect(n.std / 0.5).toBeCloseTo(1, 1);
  });

  it('truncated normal stays within 2σ with the truncated std 0.8796σ', () => {
    const t = stats(init.truncatedNormal(0, 0.2)(W, rng()));
    expect(t.min).toBeGreaterThanOrEqual(-0.4);
    expect(t.max).toBeLessThanOrEqual(0.4);
    expect(t.std / (0.2 * 0.8796)).toBeCloseTo(1, 1);
    // PyTorch-style absolute bounds: N(0, 0.01²) cut at ±2 is practically untruncated.
    const p = stats(init.truncatedNormal(0, 0.01, [-2, 2])(W, rng()));
    expect(p.std / 0.01).toBeCloseTo(1, 1);
    const one = stats(init.truncatedNormal(0, 1, [0, 0.5])(W, rng()));
    expect(one.min).toBeGreaterThanOrEqual(0);
    expect(one.max).toBeLessThanOrEqual(0.5);
    expect(() => init.truncatedNormal(0, 1, [1, 0])([2])).toThrow(core.ConfigError);
  });

  it('Xavier/Glorot uniform and normal: variance 2/(fanIn+fanOut)', () => {
    const bound = Math.sqrt(6 / (FAN_IN + FAN_OUT));
    const u = stats(init.xavierUniform()(W, rng()));
    expect(u.max).toBeLessThanOrEqual(bound);
    expect(u.min).toBeGreaterThanOrEqual(-bound);
    expect(u.std / Math.sqrt(2 / (FAN_IN + FAN_OUT))).toBeCloseTo(1, 1);
    const n = stats(init.xavierNormal(2)(W, rng()));
    expect(n.std / (2 * Math.sqrt(2 / (FAN_IN + FAN_OUT)))).toBeCloseTo(1, 1);
  });

  it('He/Kaiming: fan-in or fan-out with the ReLU and leaky-ReLU gains', () => {
    const fanIn = stats(init.kaimingNormal({ mode: 'fanIn', nonlinearity: 'relu' })(W, rng()));
    expect(fanIn.std / (Math.SQRT2 / Math.sqrt(FAN_IN))).toBeCloseTo(1, 1);
    const fanOut = stats(init.kaimingNormal({ mode: 'fanOut', nonlinearity: 'relu' })(W, rng()));
    expect(fanOut.std / (Math.SQRT2 / Math.sqrt(FAN_OUT))).toBeCloseTo(1, 1);
    const leaky = stats(init.kaimingUniform({ nonlinearity: 'leaky_relu', a: 0.2 })(W, rng()));
    const bound = Math.sqrt(3) * Math.sqrt(2 / (1 + 0.04)) / Math.sqrt(FAN_IN);
    expect(leaky.max).toBeLessThanOrEqual(bound);
    expect(leaky.max / bound).toBeGreaterThan(0.99);
    expect(init.gain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(init.gain('tanh')).toBeCloseTo(5 / 3, 12);
    expect(init.gain('leaky_relu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 12);
  });

  it('LeCun normal and uniform: variance 1/fanIn', () => {
    expect(stats(init.lecunNormal()(W, rng())).std * Math.sqrt(FAN_IN)).toBeCloseTo(1, 1);
    const u = stats(init.lecunUniform()(W, rng()));
    expect(u.max).toBeLessThanOrEqual(Math.sqrt(3 / FAN_IN));
    expect(u.std * Math.sqrt(FAN_IN)).toBeCloseTo(1, 1);
  });

  it('orthogonal: WᵀW = g²·I for tall and wide matrices', () => {
    for (const shape of [
      [8, 5],
      [4, 9],
      [2, 2, 3, 6],
    ]) {
      const w = init.orthogonal(1.5)(shape, rng());
      const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const cols = shape[shape.length - 1];
      const m = tf.reshape(w, [rows, cols]) as import('@kiln/core').tf.Tensor2D;
      const gram = rows >= cols ? tf.matMul(m, m, true, false) : tf.matMul(m, m, false, true);
      const n = Math.min(rows, cols);
      const want = tf.mul(tf.eye(n), 2.25);
      const err = tf.max(tf.abs(tf.sub(gram, want))).dataSync()[0];
      expect(err).toBeLessThan(1e-4);
      tf.dispose([w, m, gram, want]);
    }
  });

  it('draws reproducibly from a seeded generator', () => {
    const a = init.kaimingNormal()([4, 4], new core.Rng(7)).dataSync();
    const b = init.kaimingNormal()([4, 4], new core.Rng(7)).dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('layers use PyTorch defaults and accept overrides', () => {
    const conv = new L.Conv2d({ inChannels: 64, outChannels: 32, kernelSize: 3, rng: rng() });
    // kaiming_uniform(a=√5) = U(±1/√fanIn) for weights and biases.
    const w = stats(tf.clone(conv.weight.variable));
    expect(w.max).toBeLessThanOrEqual(1 / Math.sqrt(FAN_IN));
    expect(w.max * Math.sqrt(FAN_IN)).toBeGreaterThan(0.99);
    conv.dispose();
    const lin = new L.Linear({ inFeatures: 3, outFeatures: 2, weightInit: init.constant(0.5), biasInit: init.constant(0.01) });
    expect(Array.from(lin.weight.variable.dataSync())).toEqual(new Array(6).fill(0.5));
    expect(lin.bias!.variable.dataSync()[0]).toBeCloseTo(0.01, 7);
    lin.dispose();
  });
});
