import type { DType, TypedArrayOf } from './tensor-files.js';

/**
 * The typed array that holds `dtype` values: a new zeroed one of `source` elements, or one over a
 * whole ArrayBuffer. One table for every reader and writer of tensor files (bool is kept as bytes).
 */
export function typedArrayOf(dtype: DType, source: number | ArrayBuffer): TypedArrayOf {
  const n = source as number & ArrayBuffer;
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    default:
      return new Uint8Array(n);
  }
}
