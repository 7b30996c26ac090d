import { beforeAll, describe, expect, it } from 'vitest';
import { L, tf, useWasm, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

describe('regularizers', () => {
  it('L1, L2 and L1+L2 penalties', () => {
    const w = tf.tensor1d([1, -2, 3]);
    expect(L.l1(0.1).penalty(w).dataSync()[0]).toBeCloseTo(0.6, 6);
    expect(L.l2(0.1).penalty(w).dataSync()[0]).toBeCloseTo(1.4, 6);
    expect(L.l1l2(0.1, 0.01).penalty(w).dataSync()[0]).toBeCloseTo(0.6 + 0.14, 6);
    // d/dw λΣw² = 2λw
    const g = tf.grad((v: Tensor) => L.l2(0.5).penalty(v))(w);
    expect(Array.from(g.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([w, g]);
  });
  it('attach to parameters through layer options', () => {
    const lin = new L.Linear({ inFeatures: 2, outFeatures: 2, weightRegularizer: L.l2(1e-4) });
    expect(lin.weight.regularizer?.name).toBe('l2(0.0001)');
    expect(lin.bias!.regularizer).toBeUndefined();
    lin.dispose();
  });
});
