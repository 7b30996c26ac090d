import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kiln/core';
import { ArrayDataset, findLeaks, guyonRatio, holdOut, trainValTestSplit, validationFraction } from '@kiln/data';

const ds = new ArrayDataset(Float32Array.from({ length: 100 }, (_, i) => i), Int32Array.from({ length: 100 }, (_, i) => i % 10), [1]);

describe('hold-out splits', () => {
  it('holdOut keeps the parts disjoint and sized', () => {
    const [train, val] = holdOut(ds, 0.2, 1);
    expect([train.length, val.length]).toEqual([80, 20]);
    expect(findLeaks({ train, val })).toEqual([]);
  });

  it('trainValTestSplit by ratio covers the dataset with three disjoint parts', () => {
    const [train, val, test] = trainValTestSplit(ds, [0.7, 0.2, 0.1], 4);
    expect([train.length, val.length, test.length]).toEqual([70, 20, 10]);
    const all = [...train.x, ...val.x, ...test.x].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(() => trainValTestSplit(ds, [0.5, 0.2, 0.2], 0)).toThrow(ConfigError);
  });
});

describe('leak check', () => {
  it('finds exact duplicates across splits by content, ignoring labels and duplicates within a split', () => {
    const a = new ArrayDataset(Float32Array.from([1, 2, 3, 4, 1, 2]), Int32Array.from([0, 1, 0]), [2]);
    const b = new ArrayDataset(Float32Array.from([9, 9, 3, 4]), Int32Array.from([1, 1]), [2]);
    const c = new ArrayDataset(Float32Array.from([1, 2]), Int32Array.from([5]), [2]);
    expect(findLeaks({ train: a, val: b, test: c })).toEqual([
      { splits: ['train', 'val'], indices: [1, 1] },
      { splits: ['train', 'test'], indices: [0, 0] },
    ]);
  });
});

describe('validation-size rules', () => {
  it('r = 1/√(2m)', () => {
    expect(validationFraction(50)).toBeCloseTo(0.1, 10);
    expect(validationFraction(1)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(() => validationFraction(0)).toThrow(ConfigError);
  });

  it("Guyon's ratio v/t = √(c₂/c₁) and its fraction", () => {
    const g = guyonRatio(Math.log(100), Math.log(100) * 16);
    expect(g.ratio).toBeCloseTo(0.25, 10);
    expect(g.fraction).toBeCloseTo(0.2, 10);
    expect(() => guyonRatio(-1, 3)).toThrow(ConfigError);
  });
});
