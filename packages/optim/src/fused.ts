import { tf } from '@kiln/core';

/**
 * Whether the active backend registers `kernel` (one of @kiln/core's fused optimizer updates) and
 * every tensor is float32, which is all those kernels take. Optimizers use the kernel then, and
 * their op-by-op update otherwise; both compute the same float32 operations in the same order.
 */
export function canFuse(kernel: string, ...tensors: tf.Tensor[]): boolean {
  return tf.getKernel(kernel, tf.getBackend()) != null && tensors.every((t) => t.dtype === 'float32');
}
