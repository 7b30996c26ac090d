import { beforeAll, describe, expect, it } from 'vitest';
import { L, expectClose, fixtures, runLayerContractTest, tf, toChannelsLast, useWasm, valueAndGrads } from './support.js';

beforeAll(useWasm, 60_000);

describe('LocalResponseNorm matches PyTorch (alpha divided by size, asymmetric even windows)', () => {
  for (const c of fixtures.lrn) {
    it(c.name, () => {
      const m = new L.LocalResponseNorm({ size: c.size, alpha: c.alpha, beta: c.beta, k: c.k });
      const x = toChannelsLast(c.x);
      const cot = toChannelsLast(c.cot);
      const { y, grads } = valueAndGrads((v) => m.forward(v), [x], cot);
      expectClose(y, toChannelsLast(c.y), 1e-5, 'y');
      expectClose(grads[0], toChannelsLast(c.g_x), 1e-5, 'dx');
      tf.dispose([x, cot, y, ...grads]);
    });
  }

  it("alphaConvention 'paper' scales the sum by α itself: α = α_pytorch / n reproduces PyTorch's output", () => {
    for (const c of fixtures.lrn) {
      const m = new L.LocalResponseNorm({ size: c.size, alpha: c.alpha / c.size, beta: c.beta, k: c.k, alphaConvention: 'paper' });
      const x = toChannelsLast(c.x);
      const y = m.forward(x);
      expectClose(y, toChannelsLast(c.y), 1e-5, c.name);
      tf.dispose([x, y]);
    }
    expect(() => new L.LocalResponseNorm({ size: 5, alphaConvention: 'caffe' as never })).toThrow(/alphaConvention/);
  });

  it('honours the layer contract', () => {
    runLayerContractTest({ make: () => new L.LocalResponseNorm({ size: 3, alpha: 1, beta: 0.75, k: 2 }), input: [2, 3, 3, 5], output: [2, 3, 3, 5], params: 0, badInput: [5] });
  });
});
