import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DataFormatError, KilnError } from '@kiln/core';
import { csvDataset, parseCifar, parseCsv, parseIdx, readTar } from '@kiln/data';

/**
 * fast-check properties over the byte readers: random bytes and mutated valid files (byte flips,
 * truncations, insertions) give a result or a typed Kiln error, never another exception, and every
 * result is consistent with the bytes it came from.
 */
function typedOrOk(read: () => unknown): boolean {
  try {
    read();
    return true;
  } catch (e) {
    if (e instanceof KilnError) return true;
    throw e;
  }
}

/** A valid file mutated: some bytes replaced, then cut or extended. */
const mutated = (valid: Uint8Array) =>
  fc
    .tuple(fc.array(fc.tuple(fc.nat(Math.max(0, valid.length - 1)), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.integer({ min: -valid.length, max: 64 }), fc.uint8Array({ maxLength: 64 }))
    .map(([flips, cut, extra]) => {
      const b = cut < 0 ? valid.slice(0, valid.length + cut) : new Uint8Array([...valid, ...extra.subarray(0, cut)]);
      for (const [at, v] of flips) if (at < b.length) b[at] = v;
      return b;
    });

const anyBytes = fc.uint8Array({ maxLength: 2048 });

function idx(): Uint8Array {
  return Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, ...Array.from({ length: 8 }, (_, i) => i)]);
}

function tar(entry = 'cifar-10-batches-bin/batches.meta.txt'): Uint8Array {
  const block = new Uint8Array(512 * 4);
  const name = new TextEncoder().encode(entry);
  block.set(name, 0);
  block.set(new TextEncoder().encode('0000644\0'), 100);
  block.set(new TextEncoder().encode('00000000012\0'), 124);
  block[156] = '0'.charCodeAt(0);
  block.set(new TextEncoder().encode('ustar\0'), 257);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
  block.set(new TextEncoder().encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
  block.set(new TextEncoder().encode('airplane\ncar'), 512);
  return block;
}

describe('byte readers under fast-check', () => {
  it('IDX: only typed errors; a parsed array holds exactly its shape', () => {
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutated(idx())), (b) =>
        typedOrOk(() => {
          const a = parseIdx(b, 'p.idx');
          expect(a.data.length).toBe(a.shape.reduce((x, y) => x * y, 1));
        }),
      ),
      { numRuns: 500 },
    );
  });

  it('CIFAR-10/100: only typed errors; labels stay inside the class range', () => {
    const valid = new Uint8Array(3073 * 2);
    valid[3073] = 4;
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutated(valid)), fc.constantFrom(10 as const, 100 as const), (b, variant) =>
        typedOrOk(() => {
          const ds = parseCifar(b, 'p.bin', { variant });
          for (const y of ds.y) expect(y >= 0 && y < variant).toBe(true);
        }),
      ),
      { numRuns: 400 },
    );
  });

  it('CSV: only typed errors, integer labels never truncated or wrapped', () => {
    const valid = new TextEncoder().encode('a,b,label\n1.5,"2",3\n3,4,1\n');
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutated(valid), fc.string().map((s) => new TextEncoder().encode(`a,label\n1,${s}\n`))), (b) =>
        typedOrOk(() => {
          const ds = csvDataset(parseCsv(b, 'p.csv'), 'p.csv');
          for (const y of ds.y) expect(Number.isSafeInteger(y) && y >= 0).toBe(true);
        }),
      ),
      { numRuns: 500 },
    );
  });

  it('tar: an entry named outside the archive (absolute, or with ..) is a typed error naming it', () => {
    for (const name of ['/ifar-10-batches-bin/batches.meta.txt', '../batches.meta.txt', 'cifar-10-batches-bin/../../x']) {
      expect(() => readTar(tar(name), 'hostile.tar')).toThrow(DataFormatError);
      expect(() => readTar(tar(name), 'hostile.tar')).toThrow(name);
    }
    expect(readTar(tar('a/..b/c..'), 'fine.tar').map((e) => e.name)).toEqual(['a/..b/c..']);
  });

  it('tar: only typed errors, and no entry escapes its archive', () => {
    expect(readTar(tar(), 'valid.tar').map((e) => e.name)).toEqual(['cifar-10-batches-bin/batches.meta.txt']);
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutated(tar())), (b) =>
        typedOrOk(() => {
          for (const e of readTar(b, 'p.tar')) expect(e.name.split('/').includes('..') || e.name.startsWith('/')).toBe(false);
        }),
      ),
      { numRuns: 400 },
    );
  });
});
