import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader, classWeightedSampler, horizontalFlip, mapDataset, mixUp, rotate, type Batch } from '@kiln/data';

beforeAll(async () => {
  await wasmBackend().init();
});

/** n examples of shape [2, 2, 1]; example i holds the values 4i … 4i + 3 and label i mod 3. */
function data(n: number): ArrayDataset {
  const x = Float32Array.from({ length: n * 4 }, (_, k) => k);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  return new ArrayDataset(x, y, [2, 2, 1], ['a', 'b', 'c']);
}

function drain(batches: Iterable<Batch>): { indices: number[][]; x: number[][] } {
  const indices: number[][] = [];
  const x: number[][] = [];
  for (const b of batches) {
    indices.push(Array.from(b.indices));
    x.push(Array.from(b.x.dataSync()));
    tf.dispose([b.x, b.y]);
  }
  return { indices, x };
}

async function drainAsync(batches: AsyncIterable<Batch>): Promise<{ indices: number[][]; x: number[][] }> {
  const indices: number[][] = [];
  const x: number[][] = [];
  for await (const b of batches) {
    indices.push(Array.from(b.indices));
    x.push(Array.from(b.x.dataSync()));
    tf.dispose([b.x, b.y]);
  }
  return { indices, x };
}

describe('DataLoader', () => {
  it('batches in order with a short last batch, or drops it', () => {
    const ds = data(10);
    const l = new DataLoader(ds, { batchSize: 4 });
    expect(l.length).toBe(3);
    const { indices, x } = drain(l);
    expect(indices).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(x[2]).toEqual(Array.from({ length: 8 }, (_, k) => 32 + k));
    const d = new DataLoader(ds, { batchSize: 4, dropLast: true });
    expect(d.length).toBe(2);
    expect(drain(d).indices.length).toBe(2);
    expect(() => new DataLoader(ds, { batchSize: 0 })).toThrow(ConfigError);
  });

  it('shuffles each epoch differently, reproducibly under a seed, visiting every example once', () => {
    const ds = data(20);
    const a = new DataLoader(ds, { batchSize: 6, shuffle: true, seed: 3 });
    const b = new DataLoader(ds, { batchSize: 6, shuffle: true, seed: 3 });
    const e1 = drain(a).indices.flat();
    const e2 = drain(a).indices.flat();
    expect(drain(b).indices.flat()).toEqual(e1);
    expect(e1).not.toEqual(e2);
    expect([...e1].sort((p, q) => p - q)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('resumes mid-epoch exactly, augmentations included', () => {
    const ds = data(12);
    const opts = { batchSize: 3, shuffle: true, seed: 9, transform: horizontalFlip(0.5) };
    const full = new DataLoader(ds, opts);
    drain(full);
    const reference = drain(full);
    const first = new DataLoader(ds, opts);
    drain(first);
    const it = first[Symbol.iterator]();
    const taken: Batch[] = [it.next().value as Batch, it.next().value as Batch];
    const saved = first.stateDict();
    for (const b of taken) tf.dispose([b.x, b.y]);
    const resumed = new DataLoader(ds, opts);
    resumed.loadStateDict(JSON.parse(JSON.stringify(saved)));
    const rest = drain(resumed);
    expect(rest.indices).toEqual(reference.indices.slice(2));
    expect(rest.x).toEqual(reference.x.slice(2));
  });

  it('async iteration yields the same batches as sync iteration and releases unread prefetched batches', async () => {
    const ds = data(25);
    const opts = { batchSize: 4, shuffle: true, seed: 1, transform: rotate(20), prefetch: 3 };
    const sync = drain(new DataLoader(ds, opts));
    const asyncRun = await drainAsync(new DataLoader(ds, opts));
    expect(asyncRun.indices).toEqual(sync.indices);
    expect(asyncRun.x).toEqual(sync.x);
    const before = tf.memory().numTensors;
    const l = new DataLoader(ds, opts);
    for await (const b of l) {
      tf.dispose([b.x, b.y]);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('prefetches: the next batch is assembled while the consumer awaits its step', async () => {
    const ds = data(8);
    const built: number[] = [];
    const tracked = mapDataset(ds, (e, i) => {
      built.push(i);
      return e;
    });
    const l = new DataLoader(tracked, { batchSize: 2, exampleShape: [2, 2, 1], prefetch: 1 });
    const seenWhenConsuming: number[] = [];
    for await (const b of l) {
      await new Promise((r) => setTimeout(r, 5));
      seenWhenConsuming.push(built.length);
      tf.dispose([b.x, b.y]);
    }
    // While batch 0 is consumed, batch 1 has already been built (4 examples read, not 2).
    expect(seenWhenConsuming[0]).toBeGreaterThanOrEqual(4);
  });

  it('withBatchSize copies the options at another batch size, with a generator of its own starting where this one stands', () => {
    const a = new DataLoader(data(10), { batchSize: 2, shuffle: true, seed: 4, dropLast: true });
    drain(a);
    const state = a.stateDict();
    const b = a.withBatchSize(4);
    expect([b.batchSize, b.dropLast, b.shuffle, b.length]).toEqual([4, true, true, 2]);
    // The copy's first epoch is the epoch `a` would draw next, only batched by 4.
    const next = drain(b).indices.flat();
    expect(a.stateDict()).toEqual(state);
    const fromA = drain(a).indices.flat();
    expect(next).toEqual(fromA.slice(0, 8));
    expect(() => a.withBatchSize(0)).toThrow(ConfigError);
  });

  it('takes any Dataset<Example>, with or without an example shape, and a sampler', () => {
    const ds = data(9);
    const mapped = mapDataset(ds, (e) => ({ x: e.x.map((v) => -v), y: e.y }));
    const l = new DataLoader(mapped, { batchSize: 9, exampleShape: [2, 2, 1] });
    expect(drain(l).x[0][5]).toBe(-5);
    // Without an example shape a flat x keeps its length as its shape.
    const flat = new DataLoader(mapped, { batchSize: 9 });
    for (const b of flat) {
      expect(b.x.shape).toEqual([9, 4]);
      tf.dispose([b.x, b.y]);
    }
    // Class-weighted sampling on a 1 : 8 imbalanced set draws both classes about equally.
    const y = Int32Array.from({ length: 90 }, (_, i) => (i < 10 ? 1 : 0));
    const imbalanced = new ArrayDataset(new Float32Array(90), y, [1]);
    const w = new DataLoader(imbalanced, { batchSize: 1000, sampler: classWeightedSampler(y, { numSamples: 4000 }), seed: 2 });
    let ones = 0;
    for (const b of w) {
      ones += (b.y.dataSync() as Int32Array).reduce((a, v) => a + v, 0);
      tf.dispose([b.x, b.y]);
    }
    expect(ones / 4000).toBeGreaterThan(0.45);
    expect(ones / 4000).toBeLessThan(0.55);
  });

  it('a transform that hands its input back keeps the batch alive, and leaks nothing', () => {
    const ds = data(6);
    const before = tf.memory().numTensors;
    const l = new DataLoader(ds, { batchSize: 3, transform: (x) => x, batchTransform: (b) => b, seed: 4 });
    for (const b of l) {
      expect(b.x.isDisposed).toBe(false);
      expect(b.x.shape[0]).toBe(3);
      expect(b.x.dataSync().length).toBe(b.x.size);
      tf.dispose([b.x, b.y]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('applies a label-mixing batch transform after the image transform', () => {
    const ds = data(6);
    const l = new DataLoader(ds, { batchSize: 6, batchTransform: mixUp({ numClasses: 3 }), seed: 4 });
    for (const b of l) {
      expect(b.y.shape).toEqual([6, 3]);
      tf.dispose([b.x, b.y]);
    }
  });
});
