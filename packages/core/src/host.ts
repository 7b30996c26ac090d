import * as tf from './tfjs-core.js';
import type { DType, HostTensor } from './tensor-files.js';

/**
 * Copies a tensor's values to the host synchronously. Backends whose data lives on a GPU may refuse
 * synchronous reads (WebGPU in Node does); use {@link toHostAsync} wherever the caller can await.
 */
export function toHost(t: tf.Tensor): HostTensor {
  return hostTensor(t, t.dataSync());
}

/** Copies a tensor's values to the host, waiting for the backend (works on every backend). */
export async function toHostAsync(t: tf.Tensor): Promise<HostTensor> {
  return hostTensor(t, await t.data());
}

function hostTensor(t: tf.Tensor, values: tf.TypedArray | string[]): HostTensor {
  const dtype = t.dtype === 'bool' ? 'bool' : (t.dtype as DType);
  const data = dtype === 'bool' ? Uint8Array.from(values as Uint8Array) : values;
  return { dtype, shape: [...t.shape], data: data as HostTensor['data'] };
}

/** Makes a tensor from host data (int64/float64 are narrowed to int32/float32, tfjs's widest types). */
export function fromHost(h: HostTensor): tf.Tensor {
  switch (h.dtype) {
    case 'float64':
      return tf.tensor(Float32Array.from(h.data as Float64Array), h.shape, 'float32');
    case 'int64':
      return tf.tensor(Int32Array.from(h.data as BigInt64Array, (v) => Number(v)), h.shape, 'int32');
    case 'uint8':
      return tf.tensor(Int32Array.from(h.data as Uint8Array), h.shape, 'int32');
    case 'bool':
      return tf.tensor(h.data as Uint8Array, h.shape, 'bool');
    default:
      return tf.tensor(h.data as Float32Array | Int32Array, h.shape, h.dtype);
  }
}
