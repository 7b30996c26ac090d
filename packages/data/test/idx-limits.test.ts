import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DataFormatError } from '@kiln/core';
import { readIdxFile } from '@kiln/data';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-idx-'));

/** An IDX header for a uint8 array of `shape`. */
function idxHeader(shape: number[]): Uint8Array {
  const h = new Uint8Array(4 + 4 * shape.length);
  h.set([0, 0, 0x08, shape.length]);
  const dv = new DataView(h.buffer);
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  return h;
}

describe('IDX reading limits', () => {
  it('stops a gzip bomb at the decompression limit instead of filling memory', () => {
    const dir = tmp();
    const body = new Uint8Array(64 << 20); // 64 MiB of zeros compress to ~64 KiB
    const file = path.join(dir, 'bomb-idx3-ubyte.gz');
    writeFileSync(file, gzipSync(Buffer.concat([idxHeader([64, 1024, 1024]), body])));
    expect(() => readIdxFile(file, { maxBytes: 16 << 20 })).toThrow(/decompresses to more than the limit/);
    // Under a limit that fits, the same file reads.
    expect(readIdxFile(file, { maxBytes: 128 << 20 }).shape).toEqual([64, 1024, 1024]);
  });

  it('refuses a FIFO and a link to /dev/zero without hanging', () => {
    const dir = tmp();
    const fifo = path.join(dir, 'train-images-idx3-ubyte');
    execFileSync('mkfifo', [fifo]);
    expect(() => readIdxFile(fifo)).toThrow(DataFormatError);
    const zero = path.join(dir, 'zero-idx3-ubyte');
    execFileSync('ln', ['-s', '/dev/zero', zero]);
    expect(() => readIdxFile(zero)).toThrow(/not a regular file/);
  });

  it('refuses a header whose shape cannot be backed by the file', () => {
    const dir = tmp();
    const file = path.join(dir, 'lie-idx3-ubyte');
    writeFileSync(file, Buffer.concat([idxHeader([0xffffffff, 0xffffffff, 0xffffffff]), new Uint8Array(16)]));
    expect(() => readIdxFile(file)).toThrow(/truncated/);
  });
});
