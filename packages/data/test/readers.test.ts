import { mkdtempSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFormatError, NotFoundError } from '@kiln/core';
import { CIFAR10_CLASSES, csvDataset, parseCifar, parseCsv, parseIdx, readCifarFiles, readCsvDataset, readIdxFile, readIdxImageDataset } from '@kiln/data';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kiln-data-readers-'));

function idx(type: number, shape: number[], body: number[]): Uint8Array {
  const head = [0, 0, type, shape.length];
  for (const d of shape) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...body]);
}

/** Catches the DataFormatError `f` throws. */
function formatError(f: () => unknown): DataFormatError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DataFormatError);
    return e as DataFormatError;
  }
  throw new Error('expected a DataFormatError');
}

describe('IDX', () => {
  it('reads uint8 and big-endian int32 arrays, raw or gzip', () => {
    const u8 = parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 6]), 'a');
    expect(u8.shape).toEqual([2, 3]);
    expect(Array.from(u8.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const i32 = parseIdx(idx(0x0c, [1], [0xff, 0xff, 0xff, 0xfe]), 'b');
    expect(Array.from(i32.data)).toEqual([-2]);
    const file = path.join(tmp, 'x.idx.gz');
    writeFileSync(file, gzipSync(idx(0x08, [1, 1], [7])));
    expect(Array.from(readIdxFile(file).data)).toEqual([7]);
  });

  it('names the file and byte offset of bad headers, truncation and count mismatches', () => {
    expect(formatError(() => parseIdx(Uint8Array.from([1, 0, 8, 1]), 'f.idx')).offset).toBe(0);
    expect(formatError(() => parseIdx(Uint8Array.from([0, 0, 0x42, 1]), 'f.idx')).offset).toBe(2);
    const trunc = formatError(() => parseIdx(idx(0x08, [4], [1, 2]), 'short.idx'));
    expect(trunc.file).toBe('short.idx');
    expect(trunc.message).toMatch(/truncated/);
    const images = path.join(tmp, 'i.idx');
    const labels = path.join(tmp, 'l.idx');
    writeFileSync(images, idx(0x08, [2, 1, 1], [0, 255]));
    writeFileSync(labels, idx(0x08, [3], [0, 1, 1]));
    const e = formatError(() => readIdxImageDataset(images, labels));
    expect(e.file).toBe(labels);
    expect(e.message).toMatch(/label count/);
    writeFileSync(path.join(tmp, 'bad.gz'), Uint8Array.from([0x1f, 0x8b, 1, 2, 3]));
    expect(formatError(() => readIdxFile(path.join(tmp, 'bad.gz'))).message).toMatch(/gzip/);
  });
});

describe('CIFAR binary', () => {
  function record(label: number[], pixel: (c: number, p: number) => number): number[] {
    const out = [...label];
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) out.push(pixel(c, p));
    return out;
  }

  it('reads CIFAR-10 planar records into HWC images', () => {
    const bytes = Uint8Array.from([...record([3], (c, p) => (c * 50 + p) % 256), ...record([9], () => 255)]);
    const ds = parseCifar(bytes, 'data_batch_1.bin');
    expect(ds.length).toBe(2);
    expect(ds.shape).toEqual([32, 32, 3]);
    expect(Array.from(ds.y)).toEqual([3, 9]);
    expect(ds.classes).toEqual(CIFAR10_CLASSES);
    // Pixel 5 of image 0: R = 5, G = 55, B = 105.
    const x = ds.get(0).x;
    expect([x[15], x[16], x[17]].map((v) => Math.round(v * 255))).toEqual([5, 55, 105]);
    const file = path.join(tmp, 'b.bin');
    writeFileSync(file, bytes);
    expect(readCifarFiles([file, file]).length).toBe(4);
    expect(() => readCifarFiles([path.join(tmp, 'missing.bin')])).toThrow(NotFoundError);
  });

  it('reads CIFAR-100 fine or coarse labels', () => {
    const bytes = Uint8Array.from(record([7, 42], () => 0));
    expect(Array.from(parseCifar(bytes, 'train.bin', { variant: 100 }).y)).toEqual([42]);
    expect(Array.from(parseCifar(bytes, 'train.bin', { variant: 100, labels: 'coarse' }).y)).toEqual([7]);
  });

  it('reports truncated records and out-of-range labels with their offsets', () => {
    const rec = record([1], () => 0);
    const e = formatError(() => parseCifar(Uint8Array.from([...rec, ...rec.slice(0, 100)]), 'cut.bin'));
    expect(e.offset).toBe(3073);
    expect(e.message).toMatch(/truncated/);
    const bad = formatError(() => parseCifar(Uint8Array.from([...rec, ...record([12], () => 0)]), 'lab.bin'));
    expect(bad.offset).toBe(3073);
    expect(formatError(() => parseCifar(new Uint8Array(3074 * 2), 'c100.bin')).hint).toMatch(/variant 100/);
  });
});

describe('CSV', () => {
  it('parses quoted fields, CRLF and blank lines', () => {
    const t = parseCsv('a,"b ""q""",c\r\n1,"x,y",3\n\n4,5,6\n', 't.csv');
    expect(t.header).toEqual(['a', 'b "q"', 'c']);
    expect(t.rows).toEqual([
      ['1', 'x,y', '3'],
      ['4', '5', '6'],
    ]);
  });

  it('builds a dataset from numeric features and a label column (integers or names)', () => {
    const file = path.join(tmp, 'iris.csv');
    writeFileSync(file, 'sl,sw,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,virginica\n4.9,3.0,setosa\n');
    const ds = readCsvDataset(file, { labelColumn: 'species' });
    expect(ds.shape).toEqual([2]);
    expect(ds.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(Array.from(ds.y)).toEqual([0, 1, 2, 0]);
    expect(Array.from(ds.get(1).x)).toEqual([7, Math.fround(3.2)]);
    const numeric = csvDataset(parseCsv('y,f\n1,0.5\n0,2\n', 'n.csv'), 'n.csv', { labelColumn: 0 });
    expect(Array.from(numeric.y)).toEqual([1, 0]);
    expect(Array.from(numeric.x)).toEqual([0.5, 2]);
  });

  it('reports ragged rows, unterminated quotes and non-numeric features with offsets', () => {
    expect(formatError(() => parseCsv('a,b\n1,2\n3\n', 'r.csv')).offset).toBe(8);
    expect(formatError(() => parseCsv('a,b\n"1,2\n', 'q.csv')).offset).toBe(4);
    const e = formatError(() => csvDataset(parseCsv('f,y\nabc,1\n', 'v.csv'), 'v.csv'));
    expect(e.message).toMatch(/column 'f' is not a number/);
    expect(e.offset).toBe(4);
  });
});
