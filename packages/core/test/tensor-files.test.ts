import { describe, expect, it } from 'vitest';
import { DataFormatError, decodeNpy, decodeSafetensors, encodeNpy, encodeSafetensors } from '@kiln/core';

describe('safetensors', () => {
  it('round-trips tensors and metadata with 8-byte aligned data', () => {
    const bytes = encodeSafetensors(
      {
        'b.weight': { dtype: 'float32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        'a.steps': { dtype: 'int32', shape: [1], data: new Int32Array([7]) },
      },
      { format: 'kiln' },
    );
    const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + hlen) % 8).toBe(0);
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: 'kiln' });
    expect(tensors['b.weight'].shape).toEqual([2, 3]);
    expect(Array.from(tensors['b.weight'].data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(tensors['a.steps'].data as Int32Array)).toEqual([7]);
  });

  it('rejects truncated and inconsistent files with the byte offset', () => {
    const good = encodeSafetensors({ w: { dtype: 'float32', shape: [4], data: new Float32Array(4) } });
    expect(() => decodeSafetensors(good.subarray(0, 5), 'w.safetensors')).toThrow(/too short/);
    const cut = good.subarray(0, good.length - 4);
    try {
      decodeSafetensors(cut, 'w.safetensors');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DataFormatError);
      expect((e as DataFormatError).file).toBe('w.safetensors');
      expect((e as Error).message).toMatch(/outside the file/);
    }
  });
});

describe('npy', () => {
  it('round-trips a float32 array and reads the header numpy writes', () => {
    const bytes = encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array([1, -2, 3.5, 4]) });
    expect((bytes.length - 16) % 16).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(10, 70));
    expect(header).toContain("'descr': '<f4'");
    const t = decodeNpy(bytes);
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, -2, 3.5, 4]);
  });

  it('names the problem for a bad magic or truncated data', () => {
    expect(() => decodeNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'x.npy')).toThrow(/bad magic/);
    const bytes = encodeNpy({ dtype: 'int32', shape: [3], data: new Int32Array([1, 2, 3]) });
    expect(() => decodeNpy(bytes.subarray(0, bytes.length - 1), 'x.npy')).toThrow(/truncated/);
  });
});

describe('tensor files read from Node Buffers', () => {
  it('decodes a safetensors file held in a pooled Buffer (whose .buffer is shared)', () => {
    const bytes = encodeSafetensors({ w: { dtype: 'float32', shape: [3], data: new Float32Array([1.5, -2, 3]) } });
    // Small Buffers come from a shared pool: their .buffer is larger than the data and offset.
    const pooled = Buffer.from(bytes);
    expect(pooled.byteOffset > 0 || pooled.buffer.byteLength !== pooled.byteLength).toBe(true);
    const { tensors } = decodeSafetensors(pooled);
    expect(Array.from(tensors.w.data as Float32Array)).toEqual([1.5, -2, 3]);
  });
});
