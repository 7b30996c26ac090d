import { tf } from '@kiln/core';

/**
 * Clips gradients by global L2 norm (scales all by min(1, maxNorm/‖g‖), as PyTorch's
 * `clip_grad_norm_`) or element-wise to [−v, v]. Returns new tensors; the inputs are untouched.
 */
export function clipGradients(grads: tf.NamedTensorMap, value: number, algorithm: 'norm' | 'value' = 'norm'): tf.NamedTensorMap {
  return tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    if (algorithm === 'value') {
      for (const [k, g] of Object.entries(grads)) out[k] = tf.keep(tf.clipByValue(g, -value, value));
      return out;
    }
    const norm = globalNorm(Object.values(grads));
    const scale = tf.minimum(1, tf.div(value, tf.add(norm, 1e-6)));
    for (const [k, g] of Object.entries(grads)) out[k] = tf.keep(tf.mul(g, scale));
    return out;
  });
}

/** √(Σ‖gᵢ‖²) over a list of tensors. */
export function globalNorm(ts: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(ts.map((t) => tf.sum(tf.square(t))))) as tf.Scalar);
}
