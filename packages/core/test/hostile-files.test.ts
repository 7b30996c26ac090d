import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DataFormatError, KilnError, decodeNpy, decodeSafetensors, encodeNpy, encodeSafetensors, type HostTensor } from '@kiln/core';

/** Runs `decode` and accepts only success or a typed Kiln error; anything else fails the property. */
function onlyTypedErrors(decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch (e) {
    if (e instanceof KilnError) return true;
    throw e;
  }
}

const sample = (): Record<string, HostTensor> => ({
  'a.weight': { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
  'a.bias': { dtype: 'float32', shape: [3], data: Float32Array.from([0.5, -1, 2]) },
  steps: { dtype: 'int64', shape: [], data: BigInt64Array.from([7n]) },
});

/** A safetensors file with a hand-written header (padded with spaces) followed by `data`. */
function craft(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors against hostile files', () => {
  const data = new Uint8Array(24);

  it('refuses negative, fractional, overlapping, gapped and out-of-range offsets', () => {
    const cases: [unknown, RegExp][] = [
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, /start offset is not a non-negative integer/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [0.5, 8.5] } }, /not a non-negative integer/],
      [{ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, v: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, /overlaps/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, v: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, /gap/],
      [{ w: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, /outside the file/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, /bytes after the last tensor/],
      [{ w: { dtype: 'F32', shape: [1e300, 1e300], data_offsets: [0, 24] } }, /not a non-negative integer|does not match/],
      [{ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 24] } }, /does not match its shape/],
    ];
    for (const [header, message] of cases) {
      expect(() => decodeSafetensors(craft(header, data), 'crafted.safetensors')).toThrow(message);
    }
  });

  it('refuses prototype keys in the tensor table and in the metadata', () => {
    const proto = craft('{"__proto__":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}', data);
    expect(() => decodeSafetensors(proto, 'p.safetensors')).toThrow(/reserved name '__proto__'/);
    const meta = craft('{"__metadata__":{"__proto__":"x"},"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}', data);
    expect(() => decodeSafetensors(meta, 'm.safetensors')).toThrow(/reserved key/);
    const nonString = craft({ __metadata__: { epoch: 3 }, w: { dtype: 'F32', shape: [6], data_offsets: [0, 24] } }, data);
    expect(() => decodeSafetensors(nonString, 'n.safetensors')).toThrow(/is not a string/);
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();
  });

  it('refuses a header length beyond the file without allocating it', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true);
    expect(() => decodeSafetensors(bytes, 'huge.safetensors')).toThrow(DataFormatError);
  });

  it('gives only typed errors for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => onlyTypedErrors(() => decodeSafetensors(bytes, 'random'))),
      { numRuns: 500 },
    );
  });

  it('gives only typed errors, or a structurally valid result, for mutated valid files', () => {
    const valid = encodeSafetensors(sample(), { note: 'x' });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(valid.length), (flips, cut) => {
        const bytes = valid.slice(0, Math.max(cut, 8));
        for (const [at, v] of flips) if (at < bytes.length) bytes[at] = v;
        return onlyTypedErrors(() => {
          const { tensors } = decodeSafetensors(bytes, 'mutated');
          // Whatever decodes must be self-consistent.
          for (const t of Object.values(tensors)) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('.npy against hostile files', () => {
  it('gives typed errors for empty, short and malformed files', () => {
    expect(() => decodeNpy(new Uint8Array(0), 'empty.npy')).toThrow(/too short/);
    const good = encodeNpy({ dtype: 'uint8', shape: [2, 2], data: Uint8Array.from([1, 2, 3, 4]) });
    expect(decodeNpy(good, 'u8.npy').dtype).toBe('uint8');
    const npyWith = (header: string, data: Uint8Array) => {
      const h = new TextEncoder().encode(header + '\n');
      const out = new Uint8Array(10 + h.length + data.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      new DataView(out.buffer).setUint16(8, h.length, true);
      out.set(h, 10);
      out.set(data, 10 + h.length);
      return out;
    };
    const four = Uint8Array.from([1, 2, 3, 4]);
    expect(decodeNpy(npyWith("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", four)).shape).toEqual([2, 2]);
    expect(() => decodeNpy(npyWith("{'descr': '|u1', 'fortran_order': False, 'shape': (-2, 2), }", four), 'neg.npy')).toThrow(/not a non-negative integer/);
    expect(() => decodeNpy(npyWith("{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000), }", four), 'huge.npy')).toThrow(/truncated/);
    expect(() => decodeNpy(npyWith("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", four), 'complex.npy')).toThrow(/unsupported .npy dtype/);
  });

  it('gives only typed errors for random and mutated files', () => {
    const valid = encodeNpy({ dtype: 'float32', shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => onlyTypedErrors(() => decodeNpy(bytes, 'random.npy'))), { numRuns: 300 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(valid.length), (flips, cut) => {
        const bytes = valid.slice(0, cut);
        for (const [at, v] of flips) if (at < bytes.length) bytes[at] = v;
        return onlyTypedErrors(() => decodeNpy(bytes, 'mutated.npy'));
      }),
      { numRuns: 1000 },
    );
  });
});
