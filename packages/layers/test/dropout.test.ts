import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, expectClose, runLayerContractTest, seeded, tf, useWasm, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

describe('Dropout', () => {
  it('inverted scaling: kept values are x/(1−p), about p dropped; identity in eval', () => {
    const d = new L.Dropout(0.25, new core.Rng(3));
    const x = tf.ones([4000]);
    const y = d.forward(x);
    const v = y.dataSync();
    const kept = v.filter((a) => a !== 0);
    expect(new Set(kept)).toEqual(new Set([Math.fround(1 / 0.75)]));
    expect(Math.abs(1 - kept.length / 4000 - 0.25)).toBeLessThan(0.03);
    d.eval();
    const z = d.forward(x);
    expectClose(z, x, 0);
    tf.dispose([x, y, z]);
  });
  it('is reproducible from a seed', () => {
    const x = seeded([50]);
    const a = new L.Dropout(0.5, new core.Rng(9)).forward(x);
    const b = new L.Dropout(0.5, new core.Rng(9)).forward(x);
    expectClose(a, b, 0);
    tf.dispose([x, a, b]);
  });
  it('gradient is the same mask scaled by 1/(1−p)', () => {
    const d = new L.Dropout(0.5, new core.Rng(1));
    const x = seeded([20]);
    // Same seed for forward and for the gradient run, so the masks agree.
    const g = tf.grad((v: Tensor) => tf.sum(new L.Dropout(0.5, new core.Rng(1)).forward(v)))(x);
    const y = d.forward(x);
    const expected = tf.tidy(() => tf.mul(tf.notEqual(y, 0).cast('float32'), 2));
    expectClose(g, expected, 0);
    tf.dispose([x, g, y, expected]);
  });
  it('contract (eval-mode round trip; no parameters)', () => runLayerContractTest({ make: () => new L.Dropout(0.3), input: [3, 4], output: [3, 4], params: 0 }));
  it('rejects p outside [0, 1)', () => expect(() => new L.Dropout(1)).toThrow(/Dropout.p/));
});
