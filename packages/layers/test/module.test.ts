import { beforeAll, describe, expect, it } from 'vitest';
import { L, runLayerContractTest, seeded, tf, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

const net = () =>
  new L.Sequential(
    new L.Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3 }),
    new L.BatchNorm2d(2),
    new L.ReLU(),
    new L.Flatten(),
    new L.Linear({ inFeatures: 2 * 2 * 2, outFeatures: 3 }),
  );

describe('Module', () => {
  it('names parameters and buffers by dotted path, PyTorch style', () => {
    const m = net();
    expect(Object.keys(m.stateDict())).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      '4.weight',
      '4.bias',
      '1.running_mean',
      '1.running_var',
      '1.num_batches_tracked',
    ]);
    expect(m.numParameters()).toBe(9 * 2 + 2 + 4 + 8 * 3 + 3);
    expect(m.getModule('4').describe()).toBe('4 (Linear)');
    expect(() => m.getModule('9')).toThrow(/no module at '9'/);
    m.dispose();
  });

  it('loadStateDict lists every mismatch, or loads the matching keys when not strict', () => {
    const a = net();
    const b = new L.Sequential(new L.Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3 }), new L.BatchNorm2d(2));
    const sd = a.stateDict();
    expect(() => b.loadStateDict(sd)).toThrow(L.StateDictMismatchError);
    const problems = b.loadStateDict(sd, { strict: false });
    expect(problems.map((p) => `${p.key}:${p.kind}`)).toEqual(['4.weight:unexpected', '4.bias:unexpected']);
    expect(Array.from(b.getModule('0').stateDict().weight.dataSync())).toEqual(Array.from(sd['0.weight'].dataSync()));
    a.dispose();
    b.dispose();
  });

  it('freeze/unfreeze by path and train/eval reach every child', () => {
    const m = net();
    m.freeze('0');
    expect(m.trainableVariables()).toHaveLength(4);
    expect(m.numParameters({ trainableOnly: true })).toBe(4 + 27);
    m.unfreeze();
    expect(m.trainableVariables()).toHaveLength(6);
    m.eval();
    expect(m.getModule('1').training).toBe(false);
    m.train();
    expect(m.getModule('1').training).toBe(true);
    m.dispose();
  });

  it('replaceModule swaps a head and fixes its path', () => {
    const m = net();
    (m as InstanceType<typeof L.Sequential>).set(-1, new L.Linear({ inFeatures: 8, outFeatures: 5 }));
    expect(m.getModule('4').path).toBe('4');
    const x = seeded([2, 4, 4, 1]);
    const y = m.forward(x);
    expect(y.shape).toEqual([2, 5]);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('a whole small CNN honours the contract', () =>
    runLayerContractTest({
      make: net,
      input: [2, 4, 4, 1],
      output: [2, 3],
      params: 9 * 2 + 2 + 4 + 8 * 3 + 3,
      buffers: ['1.running_mean', '1.running_var', '1.num_batches_tracked'],
      badInput: [2, 4, 4, 3],
      badInputWhere: '0 (Conv2d)',
      gradCheck: { eps: 1e-3, tol: 5e-3 },
    }));
});
