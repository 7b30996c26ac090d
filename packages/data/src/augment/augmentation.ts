import type { tf, Rng } from '@kiln/core';

/**
 * An image augmentation: a batch [N, H, W, C] and a generator in, a new tensor out. Every random
 * choice is drawn from `rng`, so the same generator state gives the same output. The input is left
 * alone (the caller still owns it) and the result is always a new tensor the caller disposes.
 */
export type Augmentation = (x: tf.Tensor4D, rng: Rng) => tf.Tensor4D;

/** Images with their labels: integer labels [N] or per-class targets [N, K]. */
export interface LabelledBatch {
  /** Images, NHWC. */
  x: tf.Tensor4D;
  /** Labels [N] or per-class targets [N, K]. */
  y: tf.Tensor;
}

/** An augmentation that also changes the labels (MixUp, CutMix). Same ownership rules as `Augmentation`. */
export type BatchAugmentation = (batch: LabelledBatch, rng: Rng) => LabelledBatch;
