import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, KilnError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader, InvalidExampleError, cacheDataset, concatDatasets, horizontalFlip, mapDataset, subsetDataset, type AnyExample, type AsyncDataset, type Dataset, type Example, type ExampleValue } from '@kiln/data';

beforeAll(async () => {
  await wasmBackend().init();
});

/** A dataset of the given examples. */
function list<E>(examples: E[], extra: Record<string, unknown> = {}): Dataset<E> {
  return Object.assign({ length: examples.length, get: (i: number) => examples[i] }, extra);
}

/** The one batch of a loader over all of `ds`, as plain arrays, with each tensor's dtype and shape. */
function only<E extends Example<ExampleValue, ExampleValue>>(ds: Dataset<E>, options: ConstructorParameters<typeof DataLoader>[1] = {}) {
  const batches = [...new DataLoader(ds, { batchSize: ds.length, ...options })];
  expect(batches).toHaveLength(1);
  const b = batches[0];
  const plain = (t: unknown): unknown =>
    t instanceof tf.Tensor ? { dtype: t.dtype, shape: t.shape, values: Array.from(t.dataSync()) } : Object.fromEntries(Object.entries(t as object).map(([k, v]) => [k, plain(v)]));
  const out = { x: plain(b.x), y: plain(b.y) } as { x: any; y: any };
  tf.dispose([b.x, b.y] as tf.TensorContainer);
  return out;
}

/** The error a loader over `ds` raises on its first batch. */
function failure(ds: Dataset<Example<ExampleValue, ExampleValue>>, options: ConstructorParameters<typeof DataLoader>[1] = {}): InvalidExampleError {
  try {
    for (const b of new DataLoader(ds, { batchSize: 4, ...options })) tf.dispose([b.x, b.y] as tf.TensorContainer);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidExampleError);
    return e as InvalidExampleError;
  }
  throw new Error('the loader accepted every example');
}

describe('collation of examples of any structure', () => {
  it('stacks nested records of tensor-like values, each leaf with its own shape and dtype', () => {
    const ds = list([0, 1, 2].map((i) => ({
      x: { image: { data: [i, i, i, i], shape: [2, 2, 1] }, mask: Uint8Array.from([1, 0, i]), meta: { age: 30 + i } },
      y: { label: i, box: Float32Array.from([i, 0.5, 1, 1]) },
    })));
    const b = only(ds);
    expect(b.x.image).toEqual({ dtype: 'float32', shape: [3, 2, 2, 1], values: [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2] });
    expect(b.x.mask).toEqual({ dtype: 'int32', shape: [3, 3], values: [1, 0, 0, 1, 0, 1, 1, 0, 2] });
    expect(b.x.meta.age).toEqual({ dtype: 'float32', shape: [3], values: [30, 31, 32] });
    expect(b.y.label).toEqual({ dtype: 'int32', shape: [3], values: [0, 1, 2] });
    expect(b.y.box.dtype).toBe('float32');
    expect(b.y.box.shape).toEqual([3, 4]);
    expect(b.y.box.values.slice(4, 8)).toEqual([1, 0.5, 1, 1]);
  });

  it('integer class labels, float regression targets and multi-hot labels', () => {
    const x = Float32Array.from([1, 2]);
    expect(only(list([{ x, y: 2 }, { x, y: 0 }])).y).toEqual({ dtype: 'int32', shape: [2], values: [2, 0] });
    // A float target: a typed array, { dtype }, or a declared schema.
    expect(only(list([{ x, y: Float32Array.of(2.5) }, { x, y: Float32Array.of(-1) }])).y).toEqual({ dtype: 'float32', shape: [2, 1], values: [2.5, -1] });
    expect(only(list([{ x, y: { data: [2.5], shape: [], dtype: 'float32' as const } }])).y).toEqual({ dtype: 'float32', shape: [1], values: [2.5] });
    expect(only(list([{ x, y: 3.7 }, { x, y: 1 }]), { schema: { y: { shape: [], dtype: 'float32' } } }).y.values).toEqual([Math.fround(3.7), 1]);
    // Multi-hot rows: int32 from plain numbers, float32 from a Float32Array.
    expect(only(list([{ x, y: [1, 0, 1] }, { x, y: [0, 0, 1] }])).y).toEqual({ dtype: 'int32', shape: [2, 3], values: [1, 0, 1, 0, 0, 1] });
    expect(only(list([{ x, y: Float32Array.of(0, 1) }])).y).toEqual({ dtype: 'float32', shape: [1, 2], values: [0, 1] });
    // A flat x takes the declared example shape.
    expect(only(list([{ x: [1, 2, 3, 4], y: 0 }]), { exampleShape: [2, 2] }).x.shape).toEqual([1, 2, 2]);
  });

  it('a value that does not fit int32 is an error naming the example and field, never a truncation', () => {
    const x = [0];
    const cases: [unknown, RegExp][] = [
      [3.7, /does not fit int32/],
      [1e10, /does not fit int32/],
      [Number.NaN, /does not fit int32/],
      [-1, /class label out of range/],
    ];
    for (const [bad, message] of cases) {
      const e = failure(list([{ x, y: 1 }, { x, y: 2 }, { x, y: bad as number }]));
      expect(e.index).toBe(2);
      expect(e.field).toBe('y');
      expect(e.message).toMatch(message);
      expect(e.found).toBe(String(bad));
    }
    // A float label in the first example: plain numbers in a target are int32, so this is refused too.
    expect(failure(list([{ x, y: 0.5 }])).hint).toMatch(/float32/);
    // Inside a record: the dotted field, and int32 overflow from a Float64Array.
    const e = failure(list([{ x, y: { counts: [1, 2] } }, { x, y: { counts: Float64Array.of(3, 2 ** 31) } }]));
    expect([e.index, e.field]).toEqual([1, 'y.counts']);
    // With the dataset's classes known, a label must be below their number.
    expect(failure(list([{ x, y: 0 }, { x, y: 3 }], { classes: ['a', 'b', 'c'] })).message).toMatch(/\[0, 3\)/);
  });

  it('every example is checked against the schema: shapes, keys and dtypes', () => {
    const x = Float32Array.of(1, 2);
    const shape = failure(list([{ x, y: 0 }, { x, y: 1 }, { x: Float32Array.of(1, 2, 3), y: 0 }]));
    expect([shape.index, shape.field]).toEqual([2, 'x']);
    expect(shape.message).toMatch(/wrong number of values/);
    const declared = failure(list([{ x: { data: [1, 2], shape: [1, 2] }, y: 0 }, { x: { data: [1, 2], shape: [2, 1] }, y: 0 }]));
    expect([declared.index, declared.field, declared.found]).toEqual([1, 'x', '[2, 1]']);
    const missing = failure(list<AnyExample>([{ x: { a: x, b: x }, y: 0 }, { x: { a: x }, y: 0 }]));
    expect([missing.index, missing.field]).toEqual([1, 'x.b']);
    const extra = failure(list<AnyExample>([{ x: { a: x }, y: 0 }, { x: { a: x, c: x }, y: 0 }]));
    expect(extra.message).toMatch(/unexpected keys/);
    const notRecord = failure(list([{ x: { a: x }, y: 0 }, { x, y: 0 }]));
    expect(notRecord.message).toMatch(/expected a record/);
    const dtype = failure(list([{ x, y: { data: [1], shape: [1], dtype: 'float32' as const } }]), { schema: { y: { shape: [1], dtype: 'int32' } } });
    expect(dtype.message).toMatch(/wrong dtype/);
    const nonNumber = failure(list([{ x: ['a', 'b'] as unknown as number[], y: 0 }]));
    expect(nonNumber.message).toMatch(/does not fit float32/);
    expect(() => new DataLoader(list([{ x, y: 0 }]), { schema: { y: { shape: [-1], dtype: 'int32' } } })).toThrow(ConfigError);
    expect(() => new DataLoader(list([{ x, y: 0 }]), { schema: { y: { shape: [], dtype: 'float64' as 'float32' } } })).toThrow(ConfigError);
  });

  it('augmentations apply to a tensor x; with a record x they are a ConfigError that says where to augment', () => {
    const ds = list([{ x: { a: { data: [1, 2, 3, 4], shape: [2, 2, 1] } }, y: 0 }]);
    expect(() => [...new DataLoader(ds, { transform: horizontalFlip(1) })]).toThrow(/mapDataset/);
  });

  it('an AsyncDataset of records is collated the same way', async () => {
    const examples = [0, 1, 2, 3].map((i) => ({ x: { a: Float32Array.of(i), b: Int32Array.of(i, -i) }, y: Float32Array.of(i / 2) }));
    const ds: AsyncDataset<(typeof examples)[number]> = {
      length: 4,
      get: (i) => examples[i],
      getMany: async (indices) => Array.from(indices, (i) => examples[i]),
    };
    const seen: number[][] = [];
    for await (const b of new DataLoader(ds, { batchSize: 2 })) {
      expect(b.x.b.dtype).toBe('int32');
      seen.push([...b.x.b.dataSync(), ...b.y.dataSync()]);
      tf.dispose([b.x.a, b.x.b, b.y]);
    }
    expect(seen).toEqual([[0, 0, 1, -1, 0, 0.5], [2, -2, 3, -3, 1, 1.5]]);
  });
});

describe('ArrayDataset targets', () => {
  it('keeps int32 class labels and checks them', () => {
    const x = new Float32Array(6);
    expect(() => new ArrayDataset(x, Int32Array.of(0, -1, 2), [2])).toThrow(KilnError);
    expect(() => new ArrayDataset(x, Int32Array.of(0, 1, 2), [2], ['a', 'b'])).toThrow(/\[0, 2\)/);
    expect(() => new ArrayDataset(x, Int32Array.of(0, 1, 2), [2], undefined, [1])).toThrow(ConfigError);
    expect(new ArrayDataset(x, Int32Array.of(0, 1, 2), [2]).get(2).y).toBe(2);
  });

  it('holds float targets of any shape: scalar regression, multi-output and multi-hot rows', () => {
    const x = Float32Array.from({ length: 6 }, (_, k) => k);
    const scalar = new ArrayDataset(x, Float32Array.of(0.5, 1.5, -2.25), [2]);
    expect(scalar.get(1).y).toBe(1.5);
    expect(only(scalar).y).toEqual({ dtype: 'float32', shape: [3], values: [0.5, 1.5, -2.25] });
    const multi = new ArrayDataset(x, Float32Array.of(1, 0, 1, 0, 0, 1, 1, 1, 0), [2], ['cat', 'dog', 'bird'], [3]);
    expect(Array.from(multi.get(1).y as Float32Array)).toEqual([0, 0, 1]);
    const b = only(multi);
    expect(b.y).toEqual({ dtype: 'float32', shape: [3, 3], values: [1, 0, 1, 0, 0, 1, 1, 1, 0] });
    expect(b.x.shape).toEqual([3, 2]);
    // Gathering, subsets and take keep the target rows.
    expect(Array.from(multi.subset([2, 0]).y)).toEqual([1, 1, 0, 1, 0, 1]);
    expect(multi.take(1).length).toBe(1);
    expect(() => new ArrayDataset(x, new Float32Array(8), [2], undefined, [3])).toThrow(KilnError);
    // Its x may be viewed in another shape of the same size; other declarations are refused.
    expect(only(multi, { exampleShape: [1, 2] }).x.shape).toEqual([3, 1, 2]);
    expect(() => new DataLoader(multi, { exampleShape: [3] })).toThrow(ConfigError);
    expect(() => new DataLoader(multi, { schema: { y: { shape: [3], dtype: 'int32' } } })).toThrow(ConfigError);
    // Views that pass examples through keep the dataset's schema: scalar float targets stay float32.
    const view = subsetDataset(cacheDataset(concatDatasets(scalar, scalar)), [4, 0]);
    expect(only(view).y).toEqual({ dtype: 'float32', shape: [2], values: [1.5, 0.5] });
    // Mapped, the examples go through the generic path and still collate to the same batch.
    expect(only(mapDataset(multi, (e) => e), { exampleShape: [2] })).toEqual(b);
  });
});
