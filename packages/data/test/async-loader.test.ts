import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import {
  ArrayDataset,
  DataLoader,
  cacheDataset,
  concatDatasets,
  horizontalFlip,
  isAsyncDataset,
  mapDataset,
  subsetDataset,
  holdOut,
  type AsyncDataset,
  type Batch,
  type Example,
} from '@kiln/data';
import { SlowDataset } from '../../../tools/testing/slow-dataset.js';

beforeAll(async () => {
  await wasmBackend().init();
});

/** n examples of shape [2, 2, 1]; example i holds 4i … 4i + 3 and label i mod 3. */
function data(n: number): ArrayDataset {
  const x = Float32Array.from({ length: n * 4 }, (_, k) => k);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  return new ArrayDataset(x, y, [2, 2, 1]);
}

/** A dataset whose requests finish out of order (delays 12, 8, 4 ms in turn), as a worker pool's may. */
function slowDataset(inner: ArrayDataset, delayMs = 12): SlowDataset {
  return new SlowDataset(inner, delayMs, true);
}

async function drainAsync(batches: AsyncIterable<Batch>): Promise<{ indices: number[][]; x: number[][]; y: number[][] }> {
  const out = { indices: [] as number[][], x: [] as number[][], y: [] as number[][] };
  for await (const b of batches) {
    out.indices.push(Array.from(b.indices));
    out.x.push(Array.from(b.x.dataSync()));
    out.y.push(Array.from(b.y.dataSync()));
    tf.dispose([b.x, b.y]);
  }
  return out;
}

describe('DataLoader on an AsyncDataset', () => {
  it('yields, in order, the batches a synchronous run over the same examples yields (augmentation included)', async () => {
    const ds = data(23);
    const opts = { batchSize: 4, shuffle: true, seed: 5, transform: horizontalFlip(0.5), prefetch: 3 };
    const reference = await drainAsync(new DataLoader(ds, opts));
    const slow = slowDataset(ds);
    const got = await drainAsync(new DataLoader(slow, opts));
    expect(got).toEqual(reference);
    // One getMany per batch, never one get per example.
    expect(slow.requests).toBe(6);
  });

  it('keeps `prefetch` batches loading ahead of the one being consumed', async () => {
    const slow = slowDataset(data(12));
    const l = new DataLoader(slow, { batchSize: 2, prefetch: 2 });
    const requestedAtConsume: number[] = [];
    for await (const b of l) {
      requestedAtConsume.push(slow.requests);
      tf.dispose([b.x, b.y]);
    }
    // While batch k is consumed, batches k+1 and k+2 have been requested (capped at the 6 batches).
    expect(requestedAtConsume).toEqual([3, 4, 5, 6, 6, 6]);
  });

  it('refuses synchronous iteration with a ConfigError that says to use for await', () => {
    const l = new DataLoader(slowDataset(data(4)), { batchSize: 2 });
    expect(() => [...l]).toThrow(ConfigError);
    expect(() => [...l]).toThrow(/for await/);
  });

  it('resumes mid-epoch exactly: the same batches as an uninterrupted epoch', async () => {
    const ds = data(14);
    const opts = { batchSize: 3, shuffle: true, seed: 11, transform: horizontalFlip(0.5) };
    const full = new DataLoader(slowDataset(ds), opts);
    await drainAsync(full);
    const reference = await drainAsync(full);

    const first = new DataLoader(slowDataset(ds), opts);
    await drainAsync(first);
    let taken = 0;
    for await (const b of first) {
      tf.dispose([b.x, b.y]);
      if (++taken === 2) break;
    }
    const saved = JSON.parse(JSON.stringify(first.stateDict()));
    expect(saved.position).toBe(2);
    const resumed = new DataLoader(slowDataset(ds), opts);
    resumed.loadStateDict(saved);
    const rest = await drainAsync(resumed);
    expect(rest.indices).toEqual(reference.indices.slice(2));
    expect(rest.x).toEqual(reference.x.slice(2));
  });

  it('leaves no tensors behind when an epoch is left with reads still in flight', async () => {
    const slow = slowDataset(data(40), 20);
    const l = new DataLoader(slow, { batchSize: 4, prefetch: 4, transform: horizontalFlip(0.5) });
    const before = tf.memory().numTensors;
    for await (const b of l) {
      tf.dispose([b.x, b.y]);
      break;
    }
    expect(slow.inFlight).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(slow.inFlight).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    // The abandoned epoch left the position at the one batch taken.
    expect(l.stateDict().position).toBe(1);
  });

  it('skipEpoch draws an epoch without reading it, as an epoch abandoned before its first batch', async () => {
    const ds = data(10);
    const opts = { batchSize: 3, shuffle: true, seed: 2, transform: horizontalFlip(0.5) };
    const abandoned = new DataLoader(ds, opts);
    const it = abandoned[Symbol.asyncIterator]();
    const first = await it.next();
    tf.dispose([first.value.x, first.value.y]);
    await it.return?.();
    const slow = slowDataset(ds);
    const skipped = new DataLoader(slow, opts);
    skipped.skipEpoch();
    expect(slow.requests).toBe(0);
    expect(skipped.stateDict().position).toBe(0);
    expect(await drainAsync(skipped)).toEqual(await drainAsync(abandoned));
  });

  it('propagates a failed read to the consumer at that batch', async () => {
    const ds = data(8);
    const failing: AsyncDataset<Example> = {
      length: 8,
      shape: [2, 2, 1],
      get: (i: number) => ds.get(i),
      getMany: async (indices: ArrayLike<number>) => {
        if (Array.from(indices).includes(5)) throw new Error('cannot decode example 5');
        return Array.from(indices, (i) => ds.get(i));
      },
    } as AsyncDataset<Example>;
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const b of new DataLoader(failing, { batchSize: 2 })) {
          seen.push(...b.indices);
          tf.dispose([b.x, b.y]);
        }
      })(),
    ).rejects.toThrow(/example 5/);
    expect(seen).toEqual([0, 1, 2, 3]);
  });
});

describe('dataset wrappers over an AsyncDataset', () => {
  it('subset, map, concat and cache forward getMany, and stay synchronous over synchronous sources', async () => {
    const ds = data(6);
    const slow = slowDataset(ds, 2);
    const sub = subsetDataset(slow, [5, 1, 3]);
    const mapped = mapDataset(sub, (e, i) => ({ x: e.x.map((v) => -v), y: e.y + 10 * i }));
    const both = concatDatasets<Example>(ds, mapped);
    const cached = cacheDataset(both);
    for (const d of [sub, mapped, both, cached]) expect(isAsyncDataset(d)).toBe(true);
    for (const d of [subsetDataset(ds, [1]), mapDataset(ds, (e) => e), concatDatasets(ds, ds), cacheDataset(ds)]) expect(isAsyncDataset(d)).toBe(false);

    if (!isAsyncDataset(cached)) throw new Error('unreachable');
    const got = await cached.getMany([7, 0, 6]);
    expect(got.map((e) => e.y)).toEqual([1 + 10, 0, 2 + 0]);
    expect(Array.from(got[0].x)).toEqual([-4, -5, -6, -7]);
    expect(Array.from(got[2].x)).toEqual([-20, -21, -22, -23]);
    // A second read of cached examples does not reach the slow source.
    const before = slow.requests;
    await cached.getMany([6, 7]);
    expect(slow.requests).toBe(before);
    await expect(sub.getMany!([3])).rejects.toThrow(ConfigError);
  });

  it('holdOut splits any dataset; over an AsyncDataset its parts are asynchronous views', async () => {
    const slow = slowDataset(data(10), 1);
    const [train, val] = holdOut(slow, 0.3, 4);
    expect(train.length + val.length).toBe(10);
    expect(isAsyncDataset(train) && isAsyncDataset(val)).toBe(true);
    const all = [...train.indices, ...val.indices].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const got = await drainAsync(new DataLoader(val, { batchSize: 8, exampleShape: [2, 2, 1] }));
    expect(got.y[0]).toEqual(Array.from(val.indices, (i) => i % 3));
  });
});
