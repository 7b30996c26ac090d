/**
 * `Tile` for the WASM backend on float32 and int32 tensors, by block copies instead of tfjs's WASM
 * kernel, which computes a multi-index per output element (grey images tiled to three channels,
 * `[N, H, W, 1]` → `[N, H, W, 3]`, took ~3 s per pass over Fashion-MNIST's test split that way). Each
 * axis is tiled from the innermost out: a row of the last axis is written `reps` times, then each
 * finished block of an outer axis is copied after itself (`copyWithin`, doubling the filled span),
 * so the one-row case of batch norm's gradient (`[1, 1, 1, C]` → `[N, H, W, C]`) is a few doublings.
 * Other dtypes go to tfjs's kernel.
 */
import { tf } from '@kiln/core';
import { tileConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Tile.js';
import type { WasmKernelArgs } from './wasm-heap.js';

type KernelFn = (args: WasmKernelArgs<{ reps: number[] }>) => tf.TensorInfo;
const native = tileConfig.kernelFunc as unknown as KernelFn;

/**
 * Writes `x` (of `shape`) tiled by `reps` into `out`, row-major. `axis` and the offsets describe the
 * block being filled: the sub-tensor of x from `from`, into `out` from `to`.
 */
function tileAxis(x: Float32Array | Int32Array, shape: number[], reps: number[], out: Float32Array | Int32Array, axis: number, from: number, to: number, inStride: number[], outStride: number[]): void {
  const d = shape[axis];
  const last = axis === shape.length - 1;
  if (last) {
    // One row of d values, repeated reps times.
    if (d === 1) out.fill(x[from], to, to + reps[axis]);
    else for (let t = 0; t < reps[axis]; t++) out.set(x.subarray(from, from + d), to + t * d);
    return;
  }
  if (axis === shape.length - 2 && reps[axis + 1] === 1) {
    // The rows of this block are the input's rows, contiguous: one copy.
    out.set(x.subarray(from, from + d * inStride[axis]), to);
  } else {
    for (let i = 0; i < d; i++) tileAxis(x, shape, reps, out, axis + 1, from + i * inStride[axis], to + i * outStride[axis], inStride, outStride);
  }
  const block = d * outStride[axis];
  const total = block * reps[axis];
  for (let filled = block; filled < total; filled *= 2) out.copyWithin(to + filled, to, to + Math.min(filled, total - filled));
}

function tile(args: WasmKernelArgs<{ reps: number[] }>): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as tf.TensorInfo;
  const reps = attrs.reps;
  if ((x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length === 0 || reps.length !== x.shape.length) return native(args);
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  // The heap's typed array of the tensor's dtype (a Float32Array or an Int32Array).
  const view = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array | Int32Array;
  const o = view(out);
  if (o.length === 0) return out;
  const r = x.shape.length;
  const inStride = new Array<number>(r).fill(1);
  const outStride = new Array<number>(r).fill(1);
  for (let a = r - 2; a >= 0; a--) {
    inStride[a] = inStride[a + 1] * x.shape[a + 1];
    outStride[a] = outStride[a + 1] * outShape[a + 1];
  }
  tileAxis(view(x), x.shape, reps, o, 0, 0, 0, inStride, outStride);
  return out;
}

export const broadcastTileConfig: tf.KernelConfig = {
  kernelName: tf.Tile,
  backendName: 'wasm',
  // The fallback is tfjs's kernel, which binds its WASM function in its setup.
  setupFunc: tileConfig.setupFunc,
  kernelFunc: tile as unknown as tf.KernelFunc,
};
