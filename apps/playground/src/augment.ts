import { tf, type Rng } from '@kiln/core';

/** Which augmentations to apply to each training batch. */
export interface AugmentOptions {
  /** Mirror each image left–right with probability 1/2. */
  flip: boolean;
  /** Translate each image by up to ±2 pixels in each direction (zero padding). */
  shift: boolean;
  /** Add N(0, 0.1²) noise to every pixel (in standardised units). */
  noise: boolean;
}

const SHIFT = 2;

/**
 * Applies the chosen augmentations to a batch [n, h, w, c] as batched tensor ops on the active
 * backend. Per-example choices (flip or not, offsets) come from `rng`, so a seeded run repeats.
 */
export function augment(x: tf.Tensor4D, options: AugmentOptions, rng: Rng): tf.Tensor4D {
  if (!options.flip && !options.shift && !options.noise) return tf.clone(x);
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    let out = x;
    if (options.flip) {
      // Select per example between the image and its mirror with a 0/1 mask.
      const mask = tf.tensor4d(Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0)), [n, 1, 1, 1]);
      out = tf.add(tf.mul(mask, tf.reverse(out, 2)), tf.mul(tf.sub(1, mask), out));
    }
    if (options.shift) {
      // Pad once, then crop each example at its own offset; crops are gathered with one slice each.
      const padded = tf.pad(out, [[0, 0], [SHIFT, SHIFT], [SHIFT, SHIFT], [0, 0]]);
      const crops: tf.Tensor4D[] = [];
      for (let i = 0; i < n; i++) {
        const dy = rng.int(2 * SHIFT + 1);
        const dx = rng.int(2 * SHIFT + 1);
        crops.push(tf.slice(padded, [i, dy, dx, 0], [1, h, w, c]));
      }
      out = tf.concat(crops, 0);
    }
    if (options.noise) {
      const noise = Float32Array.from({ length: n * h * w * c }, () => 0.1 * rng.normal());
      out = tf.add(out, tf.tensor4d(noise, [n, h, w, c]));
    }
    return out as tf.Tensor4D;
  });
}
