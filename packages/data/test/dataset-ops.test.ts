import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kiln/core';
import { ArrayDataset, cacheDataset, concatDatasets, filterDataset, mapDataset, subsetDataset } from '@kiln/data';

const ds = new ArrayDataset(Float32Array.from([0, 1, 2, 3, 4, 5]), Int32Array.from([0, 1, 0]), [2]);

describe('dataset operations', () => {
  it('map, filter, subset and concat compose as views', () => {
    const doubled = mapDataset(ds, (e) => ({ x: e.x.map((v) => 2 * v), y: e.y }));
    expect(Array.from(doubled.get(2).x)).toEqual([8, 10]);
    const zeros = filterDataset(doubled, (e) => e.y === 0);
    expect(zeros.length).toBe(2);
    expect(Array.from(zeros.get(1).x)).toEqual([8, 10]);
    const sub = subsetDataset(ds, [2, 0]);
    expect(Array.from(sub.get(0).x)).toEqual([4, 5]);
    const both = concatDatasets(ds, sub, zeros);
    expect(both.length).toBe(7);
    expect(Array.from(both.get(3).x)).toEqual([4, 5]);
    expect(Array.from(both.get(6).x)).toEqual([8, 10]);
    expect(() => both.get(7)).toThrow(ConfigError);
    expect(() => subsetDataset(ds, [3])).toThrow(ConfigError);
    expect(() => ds.get(-1)).toThrow(ConfigError);
  });

  it('cache reads each example from its source once', () => {
    let reads = 0;
    const counted = mapDataset(ds, (e) => {
      reads++;
      return e;
    });
    const cached = cacheDataset(counted);
    for (let k = 0; k < 3; k++) for (let i = 0; i < cached.length; i++) cached.get(i);
    expect(reads).toBe(3);
  });
});
