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
 * Shifts each RGB image's hue by a fraction of a full turn drawn from [−m, m] (m ≤ 0.5). The shift is a
 * rotation of the chroma plane of YIQ space about the luma axis, a linear map per image, so it runs
 * as one batched matrix product; it keeps luma and chroma magnitude, as an HSV hue shift nearly does.
 */
export function hue(magnitude: number): Augmentation {
  if (!(magnitude >= 0 && magnitude <= 0.5)) throw new ConfigError('hue', 'a fraction of a turn in [0, 0.5]', magnitude);
  const toYiq = [
    [0.299, 0.587, 0.114],
    [0.596, -0.274, -0.322],
    [0.211, -0.523, 0.312],
  ];
  const fromYiq = invert3(toYiq);
  return (x, rng: Rng) => {
    const [n, h, w, c] = x.shape;
    if (c !== 3) throw new ShapeMismatchError('hue', 'RGB images [N, H, W, 3]', x.shape);
    const mats = new Float32Array(n * 9);
    for (let i = 0; i < n; i++) {
      const t = rng.uniform(-magnitude, magnitude) * 2 * Math.PI;
      const rot = [
        [1, 0, 0],
        [0, Math.cos(t), -Math.sin(t)],
        [0, Math.sin(t), Math.cos(t)],
      ];
      // Row-vector convention: rgb' = rgb · Mᵀ with M = fromYiq · rot · toYiq.
      const m = mul3(fromYiq, mul3(rot, toYiq));
      for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) mats[i * 9 + a * 3 + b] = m[b][a];
    }
    return tf.tidy(() => {
      const flat = tf.reshape(x, [n, h * w, 3]);
      const out = tf.matMul(flat, tf.tensor3d(mats, [n, 3, 3]));
      return tf.clipByValue(tf.reshape(out, [n, h, w, 3]), 0, 1) as tf.Tensor4D;
    });
  };
}

function mul3(a: number[][], b: number[][]): number[][] {
  return a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
}

function invert3(m: number[][]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}
