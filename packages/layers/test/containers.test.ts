import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, expectClose, runLayerContractTest, seeded, tf, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

const conv = (i: number, o: number, k = 3, stride = 1) => new L.Conv2d({ inChannels: i, outChannels: o, kernelSize: k, stride, padding: (k - 1) / 2 });

describe('Sequential', () => {
  it('runs children in order, names them 0, 1, … and honours the contract', () => {
    const make = () => new L.Sequential(new L.Linear({ inFeatures: 4, outFeatures: 3 }), new L.Tanh(), new L.Linear({ inFeatures: 3, outFeatures: 2 }));
    const s = make();
    expect(Object.keys(s.stateDict())).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(s.at(-1).path).toBe('2');
    s.dispose();
    runLayerContractTest({ make, input: [3, 4], output: [3, 2], params: 4 * 3 + 3 + 3 * 2 + 2, badInput: [3, 5], badInputWhere: '0 (Linear)' });
  });

  it('names the failing layer path in shape errors', () => {
    const s = new L.Sequential(new L.Linear({ inFeatures: 4, outFeatures: 3 }), new L.Linear({ inFeatures: 4, outFeatures: 2 }));
    const x = tf.zeros([1, 4]);
    expect(() => s.forward(x)).toThrow(/1 \(Linear\)[\s\S]*expected: \[\?, 4\][\s\S]*found: \[1, 3\]/);
    x.dispose();
    s.dispose();
  });
});

describe('Residual', () => {
  it('adds the identity: y = body(x) + x', () => {
    const body = new L.Linear({ inFeatures: 3, outFeatures: 3 });
    const r = new L.Residual(body);
    const x = seeded([2, 3]);
    const y = r.forward(x);
    const want = tf.add(body.forward(x), x);
    expectClose(y, want, 1e-6);
    tf.dispose([x, y, want]);
    r.dispose();
  });

  it('projects with a shortcut and applies the activation to the sum (ResNet block)', () => {
    const make = () =>
      new L.Residual(new L.Sequential(conv(2, 4, 3, 2), new L.BatchNorm2d(4)), {
        shortcut: new L.Sequential(conv(2, 4, 1, 2), new L.BatchNorm2d(4)),
        activation: new L.Tanh(),
      });
    const r = make();
    expect(Object.keys(r.stateDict())).toContain('shortcut.0.weight');
    expect(r.getModule('body.1').path).toBe('body.1');
    r.dispose();
    runLayerContractTest({
      make,
      input: [2, 4, 4, 2],
      output: [2, 2, 2, 4],
      params: 3 * 3 * 2 * 4 + 4 + 8 + (2 * 4 + 4 + 8),
      buffers: ['body.1.running_mean', 'body.1.running_var', 'body.1.num_batches_tracked', 'shortcut.1.running_mean', 'shortcut.1.running_var', 'shortcut.1.num_batches_tracked'],
      badInput: [2, 4, 4, 3],
      badInputWhere: 'body.0 (Conv2d)',
    });
  });

  it('a replaced body takes effect', () => {
    const r = new L.Residual(new L.Identity());
    r.replaceModule('body', new L.Lambda((v) => tf.mul(v, 2)));
    const x = seeded([2, 3]);
    const y = r.forward(x);
    const want = tf.mul(x, 3);
    expectClose(y, want, 1e-6);
    tf.dispose([x, y, want]);
  });

  it('names itself when the shapes of the summands differ', () => {
    const r = new L.Residual(conv(2, 4));
    const x = tf.zeros([1, 3, 3, 2]);
    expect(() => r.forward(x)).toThrow(core.ShapeMismatchError);
    expect(() => r.forward(x)).toThrow(/<root> \(Residual\)/);
    x.dispose();
    r.dispose();
  });
});

describe('Concat', () => {
  it('concatenates named branches on channels (Inception) and honours the contract', () => {
    const make = () => new L.Concat({ branch1: conv(3, 2, 1), branch3x3: conv(3, 4, 3), pool: new L.MaxPool2d({ kernelSize: 3, stride: 1, padding: 1 }) });
    const c = make();
    expect(c.children().map(([n]) => n)).toEqual(['branch1', 'branch3x3', 'pool']);
    c.dispose();
    runLayerContractTest({ make, input: [2, 5, 5, 3], output: [2, 5, 5, 9], params: 3 * 2 + 2 + 9 * 3 * 4 + 4, badInput: [2, 5, 5, 4], badInputWhere: 'branch1 (Conv2d)', gradCheck: { eps: 1e-3, tol: 5e-3 } });
  });

  it('puts branch outputs side by side in order', () => {
    const c = new L.Concat([new L.Identity(), new L.Lambda((x) => tf.mul(x, 2))]);
    const x = seeded([2, 3]);
    const y = c.forward(x);
    const want = tf.concat([x, tf.mul(x, 2)], 1);
    expectClose(y, want, 0);
    tf.dispose([x, y, want]);
  });

  it('names the branch whose output does not fit', () => {
    const c = new L.Concat({ a: conv(2, 2, 1), b: conv(2, 2, 1, 2) });
    const x = tf.zeros([1, 4, 4, 2]);
    expect(() => c.forward(x)).toThrow(/branch b/);
    x.dispose();
    c.dispose();
  });
});

describe('Flatten and Lambda', () => {
  it('Flatten keeps NHWC order', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const y = new L.Flatten().forward(x);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    tf.dispose([x, y]);
    runLayerContractTest({ make: () => new L.Flatten(), input: [2, 3, 2, 2], output: [2, 12], params: 0 });
  });
  it('Lambda', () => runLayerContractTest({ make: () => new L.Lambda((x) => tf.mul(x, 3), 'Triple'), input: [2, 3], output: [2, 3], params: 0 }));
});
