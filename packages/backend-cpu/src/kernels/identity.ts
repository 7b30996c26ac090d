/**
 * `Identity` for the WASM backend as an alias of its input, as tfjs's CPU backend has it: the
 * output shares the input's heap bytes and bumps their reference count. tfjs's WASM kernel copies
 * the tensor instead, and tfjs calls Identity for every gradient it passes through unchanged (46
 * calls in a LeNet-5 training step, 175 in ResNet-18's). Sharing is safe because no kernel writes
 * into its inputs, and a variable's `assign` replaces its data instead of overwriting it.
 */
import { tf } from '@kiln/core';
import { identityConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Identity.js';
import type { WasmKernelArgs } from './wasm-heap.js';

function identity(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend } = args;
  const { x } = inputs;
  // Strings live outside the heap; tfjs's kernel handles them.
  if (x.dtype === 'string') return (identityConfig.kernelFunc as unknown as (a: WasmKernelArgs) => tf.TensorInfo)(args);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export const aliasIdentityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: identity as unknown as tf.KernelFunc,
};
