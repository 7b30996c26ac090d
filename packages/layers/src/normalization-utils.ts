import { tf } from '@kiln/core';
import type { Tensor } from './module.js';

/**
 * (x − mean) / √(var + eps) with the biased variance over `axes` — the shared core of layer,
 * group and instance normalisation (the statistics are per sample, so train and eval agree).
 */
export function standardize(x: Tensor, axes: number[], eps: number): Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, axes, true);
    return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  });
}
