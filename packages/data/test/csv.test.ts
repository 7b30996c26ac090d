import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, DataFormatError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, csvDataset, parseCsv, readCsvDataset } from '@kiln/data';

beforeAll(async () => {
  await wasmBackend().init();
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kiln-csv-'));

function csv(name: string, text: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, text);
  return file;
}

function formatError(fn: () => unknown): DataFormatError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataFormatError);
    return e as DataFormatError;
  }
  throw new Error('no error raised');
}

describe('CSV targets', () => {
  it('integer class labels by default, int32, by name with `target`', () => {
    const ds = readCsvDataset(csv('cls.csv', 'label,a,b\n2,0.5,1\n0,1.5,2\n1,3,4\n'), { target: 'label' });
    expect(ds.y).toBeInstanceOf(Int32Array);
    expect(Array.from(ds.y)).toEqual([2, 0, 1]);
    expect(Array.from(ds.get(1).x)).toEqual([1.5, 2]);
  });

  it('refuses to truncate float values into class labels, and says to pass targetDtype float32', () => {
    const file = csv('reg.csv', 'a,y\n1,3\n2,3.7\n3,1\n');
    const e = formatError(() => readCsvDataset(file));
    expect(e.message).toMatch(/column 'y'/);
    expect(e.message).toMatch(/row 2/);
    expect(e.where).toContain(file);
    expect(e.found).toBe('"3.7"');
    expect(e.hint).toMatch(/targetDtype: 'float32'/);
    // Asked for int32 explicitly, the row and column are named the same way.
    const explicit = formatError(() => readCsvDataset(file, { targetDtype: 'int32' }));
    expect(explicit.message).toMatch(/row 2, column 'y' is not an integer class label/);
  });

  it('negative and out-of-range int32 labels are typed errors naming file, row and column', () => {
    const neg = formatError(() => readCsvDataset(csv('neg.csv', 'a,y\n1,0\n2,1\n3,-1\n')));
    expect(neg.message).toMatch(/row 3, column 'y' is a negative class label/);
    expect(neg.where).toMatch(/neg\.csv at byte 12/);
    const big = formatError(() => csvDataset(parseCsv('a,y\n1,99999999999\n', 'big.csv'), 'big.csv'));
    expect(big.message).toMatch(/row 1, column 'y' does not fit int32/);
    expect(big.found).toBe('"99999999999"');
  });

  it('float32 targets: scalar regression values as they are', () => {
    const ds = readCsvDataset(csv('regf.csv', 'a,y\n1,3\n2,3.7\n3,-1e3\n'), { targetDtype: 'float32' });
    expect(ds.y).toBeInstanceOf(Float32Array);
    expect(Array.from(ds.y)).toEqual([3, Math.fround(3.7), -1000]);
    expect(ds.targetShape).toEqual([]);
    const batch = [...new DataLoader(ds, { batchSize: 3 })][0];
    expect(batch.y.dtype).toBe('float32');
    expect(batch.y.shape).toEqual([3]);
    tf.dispose([batch.x, batch.y]);
    const nan = formatError(() => readCsvDataset(csv('nan.csv', 'a,y\n1,2\n2,NaN\n'), { targetDtype: 'float32' }));
    expect(nan.message).toMatch(/row 2, column 'y' is not a number/);
  });

  it('several target columns: multi-hot or multi-output float targets, features are the rest', () => {
    const ds = readCsvDataset(csv('multi.csv', 'f1,cat,dog,f2,bird\n0.5,1,0,2,1\n1.5,0,0,3,1\n'), { target: ['cat', 'dog', 'bird'] });
    expect(ds.targetShape).toEqual([3]);
    expect(ds.classes).toEqual(['cat', 'dog', 'bird']);
    expect(Array.from(ds.y)).toEqual([1, 0, 1, 0, 0, 1]);
    expect(Array.from(ds.x)).toEqual([0.5, 2, 1.5, 3]);
    const batch = [...new DataLoader(ds, { batchSize: 2 })][0];
    expect(batch.y.shape).toEqual([2, 3]);
    expect(batch.y.dtype).toBe('float32');
    tf.dispose([batch.x, batch.y]);
    expect(() => readCsvDataset(path.join(tmp, 'multi.csv'), { target: ['cat', 'dog'], targetDtype: 'int32' })).toThrow(ConfigError);
    expect(() => readCsvDataset(path.join(tmp, 'multi.csv'), { target: ['cat', 'horse'] })).toThrow(/horse/);
    expect(() => readCsvDataset(path.join(tmp, 'multi.csv'), { target: 'cat', labelColumn: 0 })).toThrow(ConfigError);
    expect(() => readCsvDataset(csv('all.csv', 'a,b\n1,0\n'), { target: ['a', 'b'] })).toThrow(/at least one feature/);
  });

  it('class names still work, with the given order or sorted', () => {
    const ds = readCsvDataset(csv('names.csv', 'a,y\n1,dog\n2,cat\n'), { classes: ['dog', 'cat'] });
    expect(Array.from(ds.y)).toEqual([0, 1]);
    const unknown = formatError(() => readCsvDataset(csv('names2.csv', 'a,y\n1,dog\n2,cow\n'), { classes: ['dog', 'cat'] }));
    expect(unknown.message).toMatch(/row 2, column 'y' has an unknown label/);
  });
});
