/**
 * Small helpers for kernels that run on tfjs's WASM backend but do part of their work in
 * JavaScript, reading and writing tensors in place on the WebAssembly heap.
 */
import { tf } from '@kiln/core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm/dist/backend_wasm.js';
import { batchMatMulConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/BatchMatMul.js';

export type { BackendWasm };

/** The arguments tfjs hands a kernel, with the backend typed as the WASM one. */
export interface WasmKernelArgs<A = Record<string, unknown>> {
  inputs: Record<string, tf.TensorInfo>;
  backend: BackendWasm;
  attrs: A;
}

/**
 * A Float32Array view of a tensor's bytes on the WASM heap.
 *
 * The heap may grow (and its ArrayBuffer be replaced) on any allocation, which detaches older
 * views; take views only after the last `makeOutput` a kernel needs, and never keep them across
 * calls into other kernels.
 */
export function f32View(backend: BackendWasm, t: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** Kernels written here compute in float32 only, as XNNPACK's do. */
export function assertFloat32(kernel: string, ...ts: tf.TensorInfo[]): void {
  for (const t of ts) {
    if (t.dtype !== 'float32') throw new Error(`${kernel} on the wasm backend supports float32 tensors only, got ${t.dtype}`);
  }
}

/** Frees a heap tensor made inside a kernel (intermediates never reach the engine). */
export function release(backend: BackendWasm, ...ts: (tf.TensorInfo | undefined)[]): void {
  for (const t of ts) if (t) backend.disposeData(t.dataId);
}

const batchMatMulKernel = batchMatMulConfig.kernelFunc as unknown as (args: {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  backend: BackendWasm;
  attrs: { transposeA: boolean; transposeB: boolean };
}) => tf.TensorInfo;

/**
 * `a · b` for heap tensors (2-D, or batched with broadcasting) through the WASM backend's own
 * BatchMatMul kernel, as a heap tensor the caller owns. Only the untransposed form is offered: it is the one XNNPACK runs (about ten times
 * faster here than the transposed forms, which fall back to a scalar loop), so callers lay their
 * operands out for it.
 */
export function matMul(backend: BackendWasm, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  return batchMatMulKernel({ inputs: { a, b }, backend, attrs: { transposeA: false, transposeB: false } });
}

/** A reshaped alias of a heap tensor: the data is shared, neither copied nor separately freed. */
export function alias(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/**
 * Upper bound, in floats, on the patch matrix a convolution gradient unrolls at once. Larger
 * batches are processed a slice of images at a time, so the scratch stays near 64 MiB whatever
 * the batch (a ResNet stage at batch 64 would otherwise need gigabytes).
 */
export const PATCH_BUDGET = 16 * 1024 * 1024;

/** How many images' patches fit in one block of `PATCH_BUDGET`. */
export function imagesPerBlock(c: tf.backend_util.Conv2DInfo): number {
  const perImage = c.outHeight * c.outWidth * c.filterHeight * c.filterWidth * c.inChannels;
  return Math.max(1, Math.min(c.batchSize, Math.floor(PATCH_BUDGET / Math.max(1, perImage))));
}
