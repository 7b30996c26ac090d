import { tf } from '@kiln/core';
import { clipGradValue, globalNorm } from '@kiln/optim';

/**
 * The trainer's gradient clipping: by value delegates to `@kiln/optim`'s `clipGradValue`; by norm
 * scales every gradient by min(1, maxNorm/‖g‖) (PyTorch's `clip_grad_norm_`) with the scale kept
 * on the device, unlike `clipGradNorm`, which also reads the norm back to report it. Reading
 * it would stall asynchronous backends (WebGPU) once per step. Returns new tensors.
 */
export function clipGradients(grads: tf.NamedTensorMap, value: number, algorithm: 'norm' | 'value' = 'norm'): tf.NamedTensorMap {
  if (algorithm === 'value') return clipGradValue(grads, value);
  return tf.tidy(() => {
    const scale = tf.minimum(1, tf.div(value, tf.add(globalNorm(grads), 1e-6)));
    const out: tf.NamedTensorMap = {};
    for (const [k, g] of Object.entries(grads)) out[k] = tf.keep(tf.mul(g, scale));
    return out;
  });
}
