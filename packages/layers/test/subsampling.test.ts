import { beforeAll, describe, expect, it } from 'vitest';
import { L, runLayerContractTest, tf, useWasm } from './support.js';

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
  it('contract: two parameters per map', () =>
    runLayerContractTest({ make: () => new L.Subsampling({ channels: 6 }), input: [2, 4, 4, 6], output: [2, 2, 2, 6], params: 12, badInput: [2, 4, 4, 5] }));
});

