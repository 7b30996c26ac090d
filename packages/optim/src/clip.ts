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
 * the update. The scale stays on the device (no host read, so asynchronous backends such as
 * WebGPU are not stalled); the norm is returned as a scalar tensor. The inputs are left untouched;
 * the caller disposes the returned tensors.
 */
export function clipGradNormOnDevice(grads: tf.NamedTensorMap, maxNorm: number): {
  /** The clipped gradients under the same names (new tensors; the caller disposes them). */
  grads: tf.NamedTensorMap;
  /** Global L2 norm of the gradients before clipping, a scalar tensor the caller disposes. */
  totalNorm: tf.Scalar;
} {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) throw new ConfigError('clipGradNorm.maxNorm', 'a finite number > 0', maxNorm);
  const totalNorm = globalNorm(grads);
  const out: tf.NamedTensorMap = {};
  tf.tidy(() => {
    const scale = tf.minimum(1, tf.div(maxNorm, tf.add(totalNorm, 1e-6)));
    for (const [k, g] of Object.entries(grads)) out[k] = tf.keep(tf.mul(g, scale));
  });
  return { grads: out, totalNorm };
}

/** {@link clipGradNormOnDevice} with the norm read back as a number, as PyTorch's `clip_grad_norm_` returns it. */
export function clipGradNorm(grads: tf.NamedTensorMap, maxNorm: number): ClipGradNormResult {
  const r = clipGradNormOnDevice(grads, maxNorm);
  const totalNorm = r.totalNorm.dataSync()[0];
  r.totalNorm.dispose();
  return { grads: r.grads, totalNorm };
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

/** Clipping as a trainer option names it: by global norm (on the device) or by value. New tensors. */
export function clipGradients(grads: tf.NamedTensorMap, value: number, algorithm: 'norm' | 'value' = 'norm'): tf.NamedTensorMap {
  if (algorithm === 'value') return clipGradValue(grads, value);
  const { grads: out, totalNorm } = clipGradNormOnDevice(grads, value);
  totalNorm.dispose();
  return out;
}
