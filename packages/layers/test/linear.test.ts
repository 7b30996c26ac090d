import { beforeAll, describe, expect, it } from 'vitest';
import { L, runLayerContractTest, tf, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

describe('Linear', () => {
  it('computes x·W + b with W stored [in, out]', () => {
    const m = new L.Linear({ inFeatures: 2, outFeatures: 3 });
    m.weight.assign(tf.tensor2d([
      [1, 2, 3],
      [4, 5, 6],
    ]));
    m.bias!.assign(tf.tensor1d([0.5, 0, -1]));
    const x = tf.tensor2d([[1, -1]]);
    const y = m.forward(x);
    expect(Array.from(y.dataSync())).toEqual([1 - 4 + 0.5, 2 - 5, 3 - 6 - 1]);
    tf.dispose([x, y]);
    m.dispose();
  });
  it('Linear (alias Dense)', () => {
    expect(L.Dense).toBe(L.Linear);
    runLayerContractTest({ make: () => new L.Linear({ inFeatures: 5, outFeatures: 3 }), input: [4, 5], output: [4, 3], params: 18, badInput: [4, 6] });
  });
  it('Linear without bias', () => runLayerContractTest({ make: () => new L.Linear({ inFeatures: 5, outFeatures: 3, bias: false }), input: [4, 5], output: [4, 3], params: 15, badInput: [5] }));
});
