import { DataFormatError } from '@kiln/core';

/**
 * The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
 * number (two zero bytes, a type code, the number of dimensions), one big-endian uint32 per
 * dimension, then the values in row-major order. Files may be gzip-compressed.
 */
export interface IdxArray {
  /** Element type, from the magic number. */
  dtype: 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
  /** Dimensions, from the header. */
  shape: number[];
  /** The values, row-major. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { dtype: IdxArray['dtype']; bytes: number }> = {
  0x08: { dtype: 'uint8', bytes: 1 },
  0x09: { dtype: 'int8', bytes: 1 },
  0x0b: { dtype: 'int16', bytes: 2 },
  0x0c: { dtype: 'int32', bytes: 4 },
  0x0d: { dtype: 'float32', bytes: 4 },
  0x0e: { dtype: 'float64', bytes: 8 },
};

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Options of {@link parseIdx}. */
export interface ParseIdxOptions {
  /**
   * Return uint8 values as a view of `bytes` instead of a copy (default false): for a caller that
   * owns `bytes` and will not change them, such as a reader that has just decompressed a file.
   */
  view?: boolean;
}

/** Parses (already decompressed) IDX bytes; `file` is only used in error messages. */
export function parseIdx(bytes: Uint8Array, file: string, options: ParseIdxOptions = {}): IdxArray {
  if (bytes.length < 4) throw new DataFormatError(file, 'file too short for an IDX header', { offset: 0, expected: '>= 4 bytes', found: `${bytes.length} bytes` });
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataFormatError(file, 'wrong magic number: not an IDX file', {
      offset: 0,
      expected: '00 00 <type> <ndim>',
      found: [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' '),
    });
  }
  const type = TYPES[bytes[2]];
  if (!type) throw new DataFormatError(file, 'unknown IDX element type', { offset: 2, expected: '0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e', found: `0x${bytes[2].toString(16)}` });
  const ndim = bytes[3];
  if (ndim < 1) throw new DataFormatError(file, 'IDX file declares zero dimensions', { offset: 3, expected: '>= 1', found: '0' });
  const headerEnd = 4 + 4 * ndim;
  if (bytes.length < headerEnd) {
    throw new DataFormatError(file, 'file truncated inside the IDX header', { offset: bytes.length, expected: `${headerEnd} header bytes`, found: `${bytes.length}` });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(dv.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * type.bytes;
  const have = bytes.length - headerEnd;
  if (have < need) {
    throw new DataFormatError(file, `file truncated: the header declares shape [${shape.join(', ')}]`, {
      offset: bytes.length,
      expected: `${need} data bytes`,
      found: `${have}`,
    });
  }
  if (have > need) {
    throw new DataFormatError(file, 'trailing bytes after the IDX data', { offset: headerEnd + need, expected: `${need} data bytes`, found: `${have}` });
  }
  const body = bytes.subarray(headerEnd, headerEnd + need);
  let data: IdxArray['data'];
  switch (type.dtype) {
    case 'uint8':
      data = options.view ? body : new Uint8Array(body);
      break;
    case 'int8':
      data = new Int8Array(body.buffer.slice(body.byteOffset, body.byteOffset + need));
      break;
    default: {
      // Multi-byte values are big-endian.
      const out =
        type.dtype === 'int16' ? new Int16Array(count) : type.dtype === 'int32' ? new Int32Array(count) : type.dtype === 'float32' ? new Float32Array(count) : new Float64Array(count);
      const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
      for (let i = 0; i < count; i++) {
        const o = i * type.bytes;
        out[i] =
          type.dtype === 'int16' ? bv.getInt16(o, false) : type.dtype === 'int32' ? bv.getInt32(o, false) : type.dtype === 'float32' ? bv.getFloat32(o, false) : bv.getFloat64(o, false);
      }
      data = out;
    }
  }
  return { dtype: type.dtype, shape, data };
}
