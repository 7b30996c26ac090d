import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, expectClose, onCpu, fixtures, runLayerContractTest, seeded, tf, toChannelsLast, useWasm, valueAndGrads, type Tensor, type Tensor4D } from './support.js';

beforeAll(useWasm, 60_000);

function checkPool2d(c: any, training = true): void {
  const opts = { kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, ceilMode: c.ceilMode, countIncludePad: c.countIncludePad };
  const m = (c.kind === 'max' ? new L.MaxPool2d(opts) : new L.AvgPool2d(opts)).train(training);
  const x = toChannelsLast(c.x);
  const cot = toChannelsLast(c.cot);
  const { y, grads } = valueAndGrads((v) => m.forward(v), [x], cot);
  expectClose(y, toChannelsLast(c.y), 1e-5, `${c.name} y`);
  expectClose(grads[0], toChannelsLast(c.g_x), 1e-5, `${c.name} dx`);
  tf.dispose([x, cot, y, ...grads]);
}

describe('2-D pooling matches PyTorch (overlapping windows, padding, ceil mode, divisors)', () => {
  for (const c of fixtures.pool2d) it(c.name, () => checkPool2d(c));
  it('in eval mode too (max pooling without its argmax kernel)', () => fixtures.pool2d.forEach((c: any) => checkPool2d(c, false)));
  it('agrees on the CPU reference backend too', async () => {
    await onCpu(() => fixtures.pool2d.forEach((c: any) => checkPool2d(c)));
  });
});

// PyTorch's max_pool2d on inputs full of ties (a ReLU's zeros, whole windows equal):
// tools/fixtures/layers/gen_max_pool_argmax.py. The first maximum in row-major window order takes
// the gradient, in training (one kernel keeping the argmax) and eval mode (tfjs's maxPool) alike.
const argmaxFixtures = JSON.parse(readFileSync(fileURLToPath(new URL('../../../tools/fixtures/layers/max-pool-argmax.json', import.meta.url)), 'utf8')).cases;

describe('MaxPool2d on ties matches PyTorch in training and eval mode', () => {
  for (const c of argmaxFixtures) {
    it(c.name, () => {
      for (const training of [true, false]) {
        const m = new L.MaxPool2d({ kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, ceilMode: c.ceilMode }).train(training);
        const x = toChannelsLast(c.x);
        const cot = toChannelsLast(c.cot);
        const { y, grads } = valueAndGrads((v) => m.forward(v), [x], cot);
        expectClose(y, toChannelsLast(c.y), 0, `${c.name} y (training ${training})`);
        expectClose(grads[0], toChannelsLast(c.g_x), 0, `${c.name} dx (training ${training})`);
        tf.dispose([x, cot, y, ...grads]);
      }
    });
  }

  it('training mode runs the argmax kernel and its scatter, eval mode the plain pool; no tensor growth', async () => {
    const m = new L.MaxPool2d(2);
    const x = seeded([2, 8, 8, 3]);
    const kernels = async () => (await tf.profile(() => tf.dispose(tf.grad((v: Tensor) => tf.sum(m.forward(v)))(x)))).kernels.map((k) => k.name);
    const trained = await kernels();
    expect(trained).toContain(core.MAX_POOL_ARGMAX_KERNEL);
    expect(trained).toContain(core.MAX_POOL_ARGMAX_GRAD_KERNEL);
    expect(trained).not.toContain('MaxPoolGrad');
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await kernels();
    expect(tf.memory().numTensors).toBe(before);
    m.eval();
    const evaluated = await kernels();
    expect(evaluated).toContain('MaxPool');
    expect(evaluated).not.toContain(core.MAX_POOL_ARGMAX_KERNEL);
    x.dispose();
  });
});

describe('1-D pooling matches PyTorch', () => {
  for (const c of fixtures.pool1d) {
    it(c.name, () => {
      const opts = { kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, ceilMode: c.ceilMode };
      const m = c.kind === 'max' ? new L.MaxPool1d(opts) : new L.AvgPool1d(opts);
      const x = toChannelsLast(c.x);
      const cot = toChannelsLast(c.cot);
      const { y, grads } = valueAndGrads((v) => m.forward(v), [x], cot);
      expectClose(y, toChannelsLast(c.y), 1e-5, 'y');
      expectClose(grads[0], toChannelsLast(c.g_x), 1e-5, 'dx');
      tf.dispose([x, cot, y, ...grads]);
    });
  }
});

describe('adaptive pooling matches PyTorch bins', () => {
  for (const c of fixtures.adaptivePool2d) {
    it(c.name, () => {
      const m = c.kind === 'max' ? new L.AdaptiveMaxPool2d({ outputSize: c.outputSize }) : new L.AdaptiveAvgPool2d({ outputSize: c.outputSize });
      const x = toChannelsLast(c.x);
      const cot = toChannelsLast(c.cot);
      const { y, grads } = valueAndGrads((v) => m.forward(v), [x], cot);
      expectClose(y, toChannelsLast(c.y), 1e-5, 'y');
      expectClose(grads[0], toChannelsLast(c.g_x), 1e-5, 'dx');
      tf.dispose([x, cot, y, ...grads]);
    });
  }
});

describe('pooling shapes and contracts', () => {
  it('computes PyTorch output lengths', () => {
    expect(L.pooledLength(112, 3, 2, 0, true)).toBe(56); // GoogLeNet maxpool1 after conv1
    expect(L.pooledLength(112, 3, 2, 0, false)).toBe(55);
    expect(L.pooledLength(5, 2, 2, 1, true)).toBe(3); // the last window would start in the padding
    expect(L.pooledLength(55, 3, 2, 0, false)).toBe(27); // AlexNet
  });

  const cases: [string, () => import('./support.js').Module, number[], number[], number[]][] = [
    ['MaxPool2d', () => new L.MaxPool2d({ kernelSize: 3, stride: 2, padding: 1, ceilMode: true }), [2, 6, 6, 3], [2, 4, 4, 3], [2, 6, 6]],
    ['AvgPool2d', () => new L.AvgPool2d({ kernelSize: 2, stride: 1, padding: 1, countIncludePad: false }), [2, 4, 4, 3], [2, 5, 5, 3], [4, 4, 3]],
    ['MaxPool1d', () => new L.MaxPool1d({ kernelSize: 3, stride: 2 }), [2, 9, 3], [2, 4, 3], [2, 9, 9, 3]],
    ['AvgPool1d', () => new L.AvgPool1d(2), [2, 8, 3], [2, 4, 3], [8, 3]],
    ['GlobalAvgPool2d', () => new L.GlobalAvgPool2d(), [2, 3, 4, 5], [2, 5], [3, 4, 5]],
    ['GlobalMaxPool2d', () => new L.GlobalMaxPool2d(), [2, 3, 4, 5], [2, 5], [3, 4, 5]],
    ['GlobalAvgPool1d', () => new L.GlobalAvgPool1d(), [2, 6, 5], [2, 5], [6, 5]],
    ['AdaptiveAvgPool2d', () => new L.AdaptiveAvgPool2d([3, 2]), [2, 7, 5, 3], [2, 3, 2, 3], [7, 5, 3]],
    ['AdaptiveMaxPool2d', () => new L.AdaptiveMaxPool2d(2), [2, 5, 5, 3], [2, 2, 2, 3], [5, 5, 3]],
  ];
  for (const [name, make, input, output, badInput] of cases) {
    it(`${name} honours the layer contract`, () => {
      // Max pooling is piecewise linear; random inputs keep every coordinate ≥ eps from a tie.
      runLayerContractTest({ make, input, output, params: 0, badInput, gradCheck: { eps: 1e-3, tol: 5e-3 } });
    });
  }

  it('rejects bad options with the option name', () => {
    expect(() => new L.MaxPool2d({ kernelSize: 0 })).toThrow(core.ConfigError);
    expect(() => new L.MaxPool2d({ kernelSize: 2, padding: 2 })).toThrow(/MaxPool2d.padding/);
    expect(() => new L.AvgPool2d({ kernelSize: 2, padding: 'same', ceilMode: true })).toThrow(/ceilMode/);
  });

  it('AdaptiveAvgPool2d equals a plain average pool when sizes divide', () => {
    const x = seeded([1, 6, 4, 2]);
    const a = new L.AdaptiveAvgPool2d([3, 2]).forward(x);
    const b = tf.avgPool(x as Tensor4D, [2, 2], [2, 2], 'valid');
    expectClose(a, b as Tensor, 1e-6);
    tf.dispose([x, a, b]);
  });
});
