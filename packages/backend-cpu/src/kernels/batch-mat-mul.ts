/**
 * `BatchMatMul` for the WASM backend that transposes operands itself. tfjs's kernel hands only the
 * untransposed product to XNNPACK and runs `aᵀ·b` and `a·bᵀ` in a scalar loop about ten times
 * slower — and those are exactly the products a dense layer's backward pass asks for
 * (dW = xᵀ·dy, dx = dy·Wᵀ). Transposing an operand costs one pass over it, against the product's
 * one pass per output column, so it pays for itself at every shape that matters.
 */
import { tf } from '@kiln/core';
import { batchMatMulConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/BatchMatMul.js';
import { transposeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Transpose.js';
import { matMul, release, type BackendWasm, type WasmKernelArgs } from './wasm-heap.js';

interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

const nativeTranspose = transposeConfig.kernelFunc as unknown as (args: WasmKernelArgs<{ perm: number[] }>) => tf.TensorInfo;

/** `t` with its last two axes swapped, as a new heap tensor (XNNPACK's transpose). */
function swapLastAxes(backend: BackendWasm, t: tf.TensorInfo): tf.TensorInfo {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return nativeTranspose({ inputs: { x: t }, backend, attrs: { perm } });
}

function batchMatMul({ inputs, backend, attrs }: WasmKernelArgs<BatchMatMulAttrs>): tf.TensorInfo {
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  if (!attrs.transposeA && !attrs.transposeB) return matMul(backend, a, b);
  const a2 = attrs.transposeA ? swapLastAxes(backend, a) : a;
  const b2 = attrs.transposeB ? swapLastAxes(backend, b) : b;
  try {
    return matMul(backend, a2, b2);
  } finally {
    release(backend, attrs.transposeA ? a2 : undefined, attrs.transposeB ? b2 : undefined);
  }
}

export const fastBatchMatMulConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  // The native kernel this one delegates to binds its WASM function in its setup; keep it.
  setupFunc: batchMatMulConfig.setupFunc,
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};
