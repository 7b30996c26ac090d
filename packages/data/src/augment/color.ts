import { tf, ConfigError, ShapeMismatchError, type Rng } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { perSampleUniform, rangeOf } from './per-sample.js';

/*
 * Colour augmentations for images with values in [0, 1] (apply them before normalisation); results
 * are clipped back to [0, 1]. Each example gets its own factor.
 */

/** ITU-R BT.601 luma weights, as used by PIL and torchvision for greyscale. */
const LUMA = [0.299, 0.587, 0.114];

function luma(x: tf.Tensor4D): tf.Tensor4D {
  const c = x.shape[3];
  if (c === 1) return x.clone();
  if (c !== 3) throw new ShapeMismatchError('colour augmentation', 'images with 1 or 3 channels', x.shape);
  return tf.sum(tf.mul(x, tf.tensor1d(LUMA)), 3, true) as tf.Tensor4D;
}

function factorRange(name: string, v: number | [number, number]): [number, number] {
  const r = rangeOf(v, 1);
  if (!(r[0] >= 0 && r[1] >= r[0])) throw new ConfigError(name, 'a magnitude in [0, 1] or a range [low, high] with 0 <= low <= high', v);
  return r;
}

/** Multiplies each image by a factor from [1 − m, 1 + m] (or a range). */
export function brightness(magnitude: number | [number, number]): Augmentation {
  const r = factorRange('brightness', magnitude);
  return (x, rng: Rng) => tf.tidy(() => tf.clipByValue(tf.mul(x, perSampleUniform(x.shape[0], rng, r[0], r[1])), 0, 1) as tf.Tensor4D);
}

/** Scales each image's deviation from its mean grey level by a factor from [1 − m, 1 + m]. */
export function contrast(magnitude: number | [number, number]): Augmentation {
  const r = factorRange('contrast', magnitude);
  return (x, rng: Rng) =>
    tf.tidy(() => {
      const mean = tf.mean(luma(x), [1, 2, 3], true);
      const f = perSampleUniform(x.shape[0], rng, r[0], r[1]);
      return tf.clipByValue(tf.add(tf.mul(tf.sub(x, mean), f), mean), 0, 1) as tf.Tensor4D;
    });
}

/** Raises each image to a power γ from [1 − m, 1 + m] (or a range): below 1 brightens shadows. */
export function gamma(magnitude: number | [number, number]): Augmentation {
  const r = factorRange('gamma', magnitude);
  if (r[0] <= 0) throw new ConfigError('gamma', 'exponents > 0', magnitude);
  return (x, rng: Rng) => tf.tidy(() => tf.pow(tf.clipByValue(x, 0, 1), perSampleUniform(x.shape[0], rng, r[0], r[1])) as tf.Tensor4D);
}

/** Blends each RGB image with its greyscale version: factor 0 is grey, 1 the original, above 1 more saturated. */
export function saturation(magnitude: number | [number, number]): Augmentation {
  const r = factorRange('saturation', magnitude);
  return (x, rng: Rng) =>
    tf.tidy(() => {
      const grey = luma(x);
      const f = perSampleUniform(x.shape[0], rng, r[0], r[1]);
      return tf.clipByValue(tf.add(grey, tf.mul(tf.sub(x, grey), f)), 0, 1) as tf.Tensor4D;
    });
}

/**
 * Shifts each RGB image's hue by a fraction of a full turn drawn from [−m, m] (m ≤ 0.5), or from a
 * range [low, high] within [−0.5, 0.5], as torchvision's `adjust_hue` does: to HSV, h ← (h + shift)
 * mod 1, back to RGB. Grey pixels (no saturation) are left as they are.
 */
export function hue(magnitude: number | [number, number]): Augmentation {
  const [lo, hi] = typeof magnitude === 'number' ? [-magnitude, magnitude] : magnitude;
  if (!(Array.isArray(magnitude) ? lo >= -0.5 && hi <= 0.5 && lo <= hi : magnitude >= 0 && magnitude <= 0.5)) {
    throw new ConfigError('hue', 'a fraction of a turn in [0, 0.5], or a range [low, high] within [-0.5, 0.5]', magnitude);
  }
  return (x, rng: Rng) => {
    if (x.shape[3] !== 3) throw new ShapeMismatchError('hue', 'RGB images [N, H, W, 3]', x.shape);
    return tf.tidy(() => {
      const shift = tf.reshape(perSampleUniform(x.shape[0], rng, lo, hi), [x.shape[0], 1, 1]);
      const [h, s, v] = rgbToHsv(x);
      return hsvToRgb(tf.mod(tf.add(h, shift), 1), s, v);
    });
  };
}

/** Hue in [0, 1), saturation and value of each pixel of NHWC RGB images, each [N, H, W]. */
function rgbToHsv(x: tf.Tensor4D): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] {
  const [r, g, b] = tf.unstack(x, 3) as tf.Tensor3D[];
  const maxc = tf.max(x, 3);
  const chroma = tf.sub(maxc, tf.min(x, 3));
  const grey = tf.equal(chroma, 0);
  const ones = tf.onesLike(maxc);
  const s = tf.div(chroma, tf.where(grey, ones, maxc));
  const c = tf.where(grey, ones, chroma);
  // Distance of each channel from the maximum, in units of chroma.
  const [rc, gc, bc] = [r, g, b].map((ch) => tf.div(tf.sub(maxc, ch), c));
  const isR = tf.equal(maxc, r);
  const isG = tf.logicalAnd(tf.equal(maxc, g), tf.logicalNot(isR));
  const isB = tf.logicalNot(tf.logicalOr(isR, isG));
  // The sector (red 0, green 2, blue 4) plus the offset within it, in sixths of a turn.
  const sixths = tf.addN([
    tf.mul(tf.cast(isR, 'float32'), tf.sub(bc, gc)),
    tf.mul(tf.cast(isG, 'float32'), tf.add(2, tf.sub(rc, bc))),
    tf.mul(tf.cast(isB, 'float32'), tf.add(4, tf.sub(gc, rc))),
  ]);
  return [tf.mod(tf.add(tf.div(sixths, 6), 1), 1) as tf.Tensor3D, s as tf.Tensor3D, maxc as tf.Tensor3D];
}

/** NHWC RGB images from hue in [0, 1), saturation and value, each [N, H, W]. */
function hsvToRgb(h: tf.Tensor, s: tf.Tensor, v: tf.Tensor): tf.Tensor4D {
  const h6 = tf.mul(h, 6);
  const sector = tf.floor(h6);
  const f = tf.sub(h6, sector);
  const clip = (t: tf.Tensor) => tf.clipByValue(t, 0, 1);
  const p = clip(tf.mul(v, tf.sub(1, s)));
  const q = clip(tf.mul(v, tf.sub(1, tf.mul(s, f))));
  const t = clip(tf.mul(v, tf.sub(1, tf.mul(s, tf.sub(1, f)))));
  const k = tf.mod(sector, 6);
  // Channel values in each of the six sectors of the colour wheel.
  const table: tf.Tensor[][] = [
    [v, q, p, p, t, v],
    [t, v, v, q, p, p],
    [p, p, t, v, v, q],
  ];
  const masks = [0, 1, 2, 3, 4, 5].map((i) => tf.cast(tf.equal(k, i), 'float32'));
  const channels = table.map((row) => tf.addN(row.map((val, i) => tf.mul(masks[i], val))));
  return tf.stack(channels, 3) as tf.Tensor4D;
}
