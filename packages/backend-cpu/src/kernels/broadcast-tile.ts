/**
 * `Tile` for the WASM backend when the input is one row — every axis but the last of size 1 — and
 * the last axis is not repeated: the shape batch norm's gradient tiles its per-channel factor to
 * (`[1, 1, 1, C]` → `[N, H, W, C]`). tfjs's WASM kernel computes a multi-index per element; here the
 * row is copied into place with `copyWithin`, doubling the filled span each time. Every other
 * tiling goes to tfjs's kernel.
 */
import { tf } from '@kiln/core';
import { tileConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Tile.js';
import { f32View, type WasmKernelArgs } from './wasm-heap.js';

type KernelFn = (args: WasmKernelArgs<{ reps: number[] }>) => tf.TensorInfo;
const native = tileConfig.kernelFunc as unknown as KernelFn;

function tile(args: WasmKernelArgs<{ reps: number[] }>): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as tf.TensorInfo;
  const r = x.shape.length;
  const row = x.shape[r - 1] ?? 1;
  const oneRow = r > 0 && x.shape.slice(0, -1).every((d) => d === 1) && attrs.reps[r - 1] === 1;
  if (x.dtype !== 'float32' || !oneRow || row === 0) return native(args);
  const outShape = x.shape.map((d, i) => d * attrs.reps[i]);
  const out = backend.makeOutput(outShape, 'float32');
  const o = f32View(backend, out);
  const total = o.length;
  if (total === 0) return out;
  o.set(f32View(backend, x));
  for (let filled = row; filled < total; filled *= 2) o.copyWithin(filled, 0, Math.min(filled, total - filled));
  return out;
}

export const broadcastTileConfig: tf.KernelConfig = {
  kernelName: tf.Tile,
  backendName: 'wasm',
  // The fallback is tfjs's kernel, which binds its WASM function in its setup.
  setupFunc: tileConfig.setupFunc,
  kernelFunc: tile as unknown as tf.KernelFunc,
};
