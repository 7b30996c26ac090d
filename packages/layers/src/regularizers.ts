import { tf } from '@kiln/core';

/** A penalty on a parameter's value, added to the loss by the trainer. */
export interface Regularizer {
  /** Shown in summaries and configs (`l2(0.0005)`). */
  readonly name: string;
  /** The scalar added to the loss for weights `w`. */
  penalty(w: tf.Tensor): tf.Scalar;
}

/** λ·Σ|w| */
export function l1(lambda = 0.01): Regularizer {
  return { name: `l1(${lambda})`, penalty: (w) => tf.tidy(() => tf.mul(lambda, tf.sum(tf.abs(w))) as tf.Scalar) };
}

/** λ·Σw² (Keras convention: no ½). */
export function l2(lambda = 0.01): Regularizer {
  return { name: `l2(${lambda})`, penalty: (w) => tf.tidy(() => tf.mul(lambda, tf.sum(tf.square(w))) as tf.Scalar) };
}

/** λ₁·Σ|w| + λ₂·Σw² */
export function l1l2(l1Lambda = 0.01, l2Lambda = 0.01): Regularizer {
  return {
    name: `l1l2(${l1Lambda},${l2Lambda})`,
    penalty: (w) => tf.tidy(() => tf.add(tf.mul(l1Lambda, tf.sum(tf.abs(w))), tf.mul(l2Lambda, tf.sum(tf.square(w)))) as tf.Scalar),
  };
}
