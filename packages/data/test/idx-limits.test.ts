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
  it('stops a gzip bomb at the decompression limit instead of filling memory', { timeout: 60_000 }, () => {
    const dir = tmp();
    const body = new Uint8Array(16 << 20); // 16 MiB of zeros compress to ~16 KiB
    const file = path.join(dir, 'bomb-idx3-ubyte.gz');
    const packed = gzipSync(Buffer.concat([idxHeader([16, 1024, 1024]), body]), { level: 1 });
    writeFileSync(file, packed);
    expect(packed.length).toBeLessThan(1 << 20);
    expect(() => readIdxFile(file, { maxBytes: 4 << 20 })).toThrow(/decompresses to more than the limit/);
    // Under a limit that fits, the same file reads.
    expect(readIdxFile(file, { maxBytes: 32 << 20 }).shape).toEqual([16, 1024, 1024]);
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
