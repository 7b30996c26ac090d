import { tf, ConfigError } from '@kiln/core';

/** √(Σᵢ‖gᵢ‖²) over all gradients: the norm of the gradient as one long vector. */
export function globalNorm(grads: tf.NamedTensorMap | tf.Tensor[]): tf.Scalar {
  const ts = Array.isArray(grads) ? grads : Object.values(grads);
  if (ts.length === 0) return tf.scalar(0);
  return tf.tidy(() => tf.sqrt(tf.addN(ts.map((t) => tf.sum(tf.square(t))))) as tf.Scalar);
}

/** What `clipGradNorm` returns. */
export interface ClipGradNormResult {
  /** The clipped gradients (new tensors; the caller disposes them). */
  grads: tf.NamedTensorMap;
  /** Global norm of the gradients before clipping, as PyTorch's `clip_grad_norm_` returns it. */
  totalNorm: number;
}

/**
 * Rescales all gradients together so their global L2 norm is at most `maxNorm`, as PyTorch's
 * `clip_grad_norm_`: g ← g · min(1, maxNorm / (‖g‖ + 1e-6)). Scaling jointly keeps the direction of
 * the update. The inputs are left untouched.
 */
export function clipGradNorm(grads: tf.NamedTensorMap, maxNorm: number): ClipGradNormResult {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) throw new ConfigError('clipGradNorm.maxNorm', 'a finite number > 0', maxNorm);
  const norm = globalNorm(grads);
  const totalNorm = norm.dataSync()[0];
  norm.dispose();
  const scale = Math.min(1, maxNorm / (totalNorm + 1e-6));
  const out: tf.NamedTensorMap = {};
  tf.tidy(() => {
    for (const [k, g] of Object.entries(grads)) out[k] = tf.keep(scale === 1 ? tf.clone(g) : tf.mul(g, scale));
  });
  return { grads: out, totalNorm };
}

/** Clamps every gradient element to [−clipValue, clipValue] (PyTorch's `clip_grad_value_`). New tensors. */
export function clipGradValue(grads: tf.NamedTensorMap, clipValue: number): tf.NamedTensorMap {
  if (!(Number.isFinite(clipValue) && clipValue > 0)) throw new ConfigError('clipGradValue.clipValue', 'a finite number > 0', clipValue);
  const out: tf.NamedTensorMap = {};
  tf.tidy(() => {
    for (const [k, g] of Object.entries(grads)) out[k] = tf.keep(tf.clipByValue(g, -clipValue, clipValue));
  });
  return out;
}
