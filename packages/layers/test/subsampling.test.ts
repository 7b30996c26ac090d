import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, runLayerContractTest, tf, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

describe('LeNet subsampling: per map a·avg + b', () => {
  it('computes a_c·mean(window) + b_c', () => {
    const m = new L.Subsampling({ channels: 2 });
    m.weight.assign(tf.tensor1d([2, -1]));
    m.bias.assign(tf.tensor1d([0.5, 1]));
    // One 2×2 window per channel: channel 0 values 1..4, channel 1 values 10..40.
    const x = tf.tensor4d([1, 10, 2, 20, 3, 30, 4, 40], [1, 2, 2, 2]);
    const y = m.forward(x);
    expect(Array.from(y.dataSync())).toEqual([2 * 2.5 + 0.5, -25 + 1]);
    tf.dispose([x, y]);
    m.dispose();
  });
  it("reduce: 'sum' multiplies the window's sum (the paper's form); initializers draw the parameters", () => {
    const m = new L.Subsampling({ channels: 2, reduce: 'sum', weightInit: L.init.constant(2), biasInit: L.init.uniform(-0.6, 0.6), rng: new core.Rng(1) });
    const bias = Array.from(m.bias.variable.dataSync());
    expect(bias.every((b) => b >= -0.6 && b <= 0.6 && b !== 0)).toBe(true);
    const x = tf.tensor4d([1, 10, 2, 20, 3, 30, 4, 40], [1, 2, 2, 2]);
    const y = m.forward(x);
    const got = Array.from(y.dataSync());
    [2 * 10 + bias[0], 2 * 100 + bias[1]].forEach((want, i) => expect(got[i]).toBeCloseTo(want, 4));
    expect(() => new L.Subsampling({ channels: 2, reduce: 'max' as never })).toThrow(core.ConfigError);
    tf.dispose([x, y]);
    m.dispose();
  });
  it('contract: two parameters per map', () =>
    runLayerContractTest({ make: () => new L.Subsampling({ channels: 6 }), input: [2, 4, 4, 6], output: [2, 2, 2, 6], params: 12, badInput: [2, 4, 4, 5] }));
});

