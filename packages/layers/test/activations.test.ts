import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, checkGradient, expectClose, fixtures, raw, runLayerContractTest, seeded, tf, useWasm, valueAndGrads, type Module, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

describe('activations match PyTorch in value and gradient', () => {
  const fns: Record<string, (x: Tensor) => Tensor> = {
    sigmoid: L.sigmoid,
    tanh: L.tanh,
    softsign: L.softsign,
    softplus: L.softplus,
    relu6: L.relu6,
    leakyRelu: (x) => L.leakyRelu(x, 0.1),
    elu: (x) => L.elu(x, 1.3),
    selu: L.selu,
    gelu: (x) => L.gelu(x),
    geluTanh: (x) => L.gelu(x, 'tanh'),
    silu: L.silu,
    mish: L.mish,
    hardtanh: (x) => L.hardtanh(x),
    threshold: (x) => L.threshold(x, 0.5, -2),
    logSigmoid: L.logSigmoid,
    softmax: (x) => L.softmax(x),
    logSoftmax: (x) => L.logSoftmax(x),
  };
  for (const [name, f] of Object.entries(fns)) {
    it(name, () => {
      const c = fixtures.activations[name];
      const x = raw(c.x);
      const cot = raw(c.cot);
      const { y, grads } = valueAndGrads(f, [x], cot);
      const want = raw(c.y);
      const wantG = raw(c.g_x);
      expectClose(y, want, 1e-5, `${name} y`);
      expectClose(grads[0], wantG, 1e-5, `${name} dy/dx`);
      tf.dispose([x, cot, y, want, wantG, ...grads]);
    });
  }
});

describe('activations against closed forms', () => {
  const x = [-3, -1.5, -0.2, 0, 0.4, 2];
  const check = (f: (t: Tensor) => Tensor, g: (v: number) => number) => {
    const t = tf.tensor1d(x);
    const y = f(t);
    const want = tf.tensor1d(x.map(g));
    expectClose(y, want, 1e-6);
    tf.dispose([t, y, want]);
  };
  it('identity', () => check(L.identity, (v) => v));
  it('binary step (Heaviside, 1 at 0)', () => check(L.binaryStep, (v) => (v >= 0 ? 1 : 0)));
  it("LeCun's scaled tanh: 1.7159·tanh(2x/3), f(1) ≈ 1", () => {
    check(L.lecunTanh, (v) => 1.7159 * Math.tanh((2 / 3) * v));
    const one = tf.scalar(1);
    const y = L.lecunTanh(one);
    expect(Math.abs(y.dataSync()[0] - 1)).toBeLessThan(1e-3);
    tf.dispose([one, y]);
  });
  it('arctan', () => check(L.arctan, Math.atan));
  it('relu', () => check(L.relu, (v) => Math.max(v, 0)));
  it('gaussian', () => check(L.gaussian, (v) => Math.exp(-v * v)));
  it('elu does not overflow for large inputs', () => check((t) => L.elu(tf.mul(t, 100)), (v) => (v > 0 ? 100 * v : Math.expm1(100 * v))));
  it('maxout takes the max of consecutive pieces', () => {
    const t = tf.tensor2d([[1, 5, -2, 3, 0, -1]]);
    const y = L.maxout(t, 2);
    expect(Array.from(y.dataSync())).toEqual([5, 3, 0]);
    tf.dispose([t, y]);
    expect(() => L.maxout(tf.zeros([1, 5]), 2)).toThrow(/maxout.pieces/);
  });
});

describe('activation modules honour the layer contract (finite-difference gradients)', () => {
  const stateless: [string, () => Module][] = [
    ['Identity', () => new L.Identity()],
    ['Sigmoid', () => new L.Sigmoid()],
    ['Tanh', () => new L.Tanh()],
    ['LeCunTanh', () => new L.LeCunTanh()],
    ['Arctan', () => new L.Arctan()],
    ['Softsign', () => new L.Softsign()],
    ['Softplus', () => new L.Softplus()],
    ['ReLU', () => new L.ReLU()],
    ['ReLU6', () => new L.ReLU6()],
    ['LeakyReLU', () => new L.LeakyReLU(0.2)],
    ['ELU', () => new L.ELU(0.7)],
    ['SELU', () => new L.SELU()],
    ['GELU', () => new L.GELU()],
    ['Gaussian', () => new L.Gaussian()],
    ['Threshold', () => new L.Threshold(0.1, 0)],
    ['SiLU', () => new L.SiLU()],
    ['Mish', () => new L.Mish()],
    ['Hardtanh', () => new L.Hardtanh(-0.5, 0.5)],
    ['LogSigmoid', () => new L.LogSigmoid()],
    ['Softmax', () => new L.Softmax()],
    ['LogSoftmax', () => new L.LogSoftmax()],
    ['RReLU (eval: mean slope)', () => new L.RReLU()],
    ['BinaryStep', () => new L.BinaryStep()],
  ];
  for (const [name, make] of stateless) {
    // Inputs are ≥ 1/60 from any kink (0, ±0.5, 0.1), so eps 5e-3 never crosses one.
    it(name, () => runLayerContractTest({ make, input: [3, 20], output: [3, 20], params: 0, gradCheck: { eps: 5e-3, tol: 3e-3 } }));
  }
  it('Maxout', () => runLayerContractTest({ make: () => new L.Maxout(3), input: [2, 12], output: [2, 4], params: 0, badInput: [2, 10], gradCheck: { eps: 5e-3 } }));
  it('PReLU learns one slope per channel', () =>
    runLayerContractTest({ make: () => new L.PReLU({ numParameters: 4 }), input: [2, 3, 4], output: [2, 3, 4], params: 4, badInput: [2, 3, 5], gradCheck: { eps: 5e-3 } }));
});

describe('PReLU and RReLU', () => {
  it('PReLU: slope 0.25 by default, learned per channel', () => {
    const p = new L.PReLU();
    const x = tf.tensor1d([-2, 3]);
    const y = p.forward(x);
    expect(Array.from(y.dataSync())).toEqual([-0.5, 3]);
    checkGradient((v) => p.forward(v), x);
    tf.dispose([x, y]);
    p.dispose();
  });
  it('RReLU: random slopes within [lower, upper] in training, the mean slope in eval', () => {
    const r = new L.RReLU({ lower: 0.1, upper: 0.3, rng: new core.Rng(5) });
    const x = tf.fill([1000], -1);
    const y = r.forward(x);
    const slopes = Array.from(y.dataSync()).map((v) => -v);
    expect(Math.min(...slopes)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...slopes)).toBeLessThanOrEqual(0.3);
    expect(new Set(slopes).size).toBeGreaterThan(100);
    expect(Math.abs(slopes.reduce((a, b) => a + b) / 1000 - 0.2)).toBeLessThan(0.01);
    const pos = tf.fill([10], 2);
    const yp = r.forward(pos);
    expectClose(yp, pos, 0);
    r.eval();
    const ye = r.forward(x);
    expectClose(ye, tf.fill([1000], -0.2), 1e-6);
    tf.dispose([x, y, pos, yp, ye]);
  });
  it('RReLU gradient in training is the drawn slope', () => {
    const x = seeded([30]);
    const g = tf.grad((v: Tensor) => tf.sum(new L.RReLU({ rng: new core.Rng(2) }).forward(v)))(x);
    const y = new L.RReLU({ rng: new core.Rng(2) }).forward(x);
    const want = tf.tidy(() => tf.where(tf.greater(x, 0), tf.onesLike(x), tf.div(y, x)));
    expectClose(g, want, 1e-5);
    tf.dispose([x, g, y, want]);
  });
});
