import { tf, ConfigError, type Rng } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { perSampleUniform, rangeOf } from './per-sample.js';

/** A normalised 1-D Gaussian of odd `size`: g_i ∝ exp(−i² / 2σ²), i = −r … r. */
export function gaussianKernel1d(size: number, sigma: number): Float32Array {
  const r = (size - 1) / 2;
  const k = new Float32Array(size);
  let s = 0;
  for (let i = 0; i < size; i++) s += k[i] = Math.exp(-((i - r) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) k[i] /= s;
  return k;
}

/** Convolves every channel with a separable kernel (rows then columns), reflecting at the borders. */
function separable(x: tf.Tensor4D, k: Float32Array): tf.Tensor4D {
  const c = x.shape[3];
  const r = (k.length - 1) / 2;
  const padded = tf.mirrorPad(x, [[0, 0], [r, r], [r, r], [0, 0]], 'reflect');
  const kx = tf.tile(tf.tensor4d(k, [1, k.length, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
  const ky = tf.tile(tf.tensor4d(k, [k.length, 1, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
  return tf.depthwiseConv2d(tf.depthwiseConv2d(padded, kx, 1, 'valid'), ky, 1, 'valid');
}

/** Options of `gaussianBlur`. */
export interface GaussianBlurOptions {
  /** Odd kernel width in pixels. */
  kernelSize: number;
  /** σ in pixels: one value or a [low, high] range drawn per image (default [0.1, 2], torchvision's). */
  sigma?: number | [number, number];
}

/** Blurs each image with a Gaussian of its own σ (reflecting at the borders, so flat images stay flat). */
export function gaussianBlur(options: GaussianBlurOptions): Augmentation {
  const size = options.kernelSize;
  if (!(Number.isInteger(size) && size >= 1 && size % 2 === 1)) throw new ConfigError('gaussianBlur.kernelSize', 'an odd positive integer', size);
  const sigma = typeof options.sigma === 'number' ? [options.sigma, options.sigma] : (options.sigma ?? [0.1, 2]);
  if (!(sigma[0] > 0 && sigma[1] >= sigma[0])) throw new ConfigError('gaussianBlur.sigma', 'σ > 0 (or a range [low, high])', options.sigma);
  return (x, rng: Rng) => {
    const [n, h, w] = x.shape;
    const r = (size - 1) / 2;
    if (r >= h || r >= w) throw new ConfigError('gaussianBlur.kernelSize', `at most ${2 * Math.min(h, w) - 1} for ${h}×${w} images`, size);
    return tf.tidy(() => {
      // σ differs per image, so each image gets its own kernel.
      const parts = tf.split(x, n, 0).map((img) => separable(img as tf.Tensor4D, gaussianKernel1d(size, rng.uniform(sigma[0], sigma[1]))));
      return tf.concat(parts, 0) as tf.Tensor4D;
    });
  };
}

/**
 * Sharpens (factor > 1) or softens (< 1) each image: out = s + f·(x − s), with s the image smoothed by
 * PIL's 3×3 SMOOTH kernel [1 1 1; 1 5 1; 1 1 1] / 13 and its one-pixel border left as it was — the
 * definition of PIL's ImageEnhance.Sharpness and torchvision's adjust_sharpness. The factor is drawn
 * per image from [1 − m, 1 + m] (or a range).
 */
export function sharpen(magnitude: number | [number, number]): Augmentation {
  const r = rangeOf(magnitude, 1);
  if (!(r[0] >= 0 && r[1] >= r[0])) throw new ConfigError('sharpen', 'a magnitude or a range [low, high] with 0 <= low', magnitude);
  return (x, rng: Rng) =>
    tf.tidy(() => {
      const [n, h, w, c] = x.shape;
      const f = perSampleUniform(n, rng, r[0], r[1]);
      if (h < 3 || w < 3) return tf.mul(x, tf.onesLike(f)) as tf.Tensor4D;
      const k = tf.tile(tf.tensor4d([1, 1, 1, 1, 5, 1, 1, 1, 1].map((v) => v / 13), [3, 3, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
      const inner = tf.slice(x, [0, 1, 1, 0], [-1, h - 2, w - 2, -1]);
      const smoothInner = tf.depthwiseConv2d(x, k, 1, 'valid');
      const smooth = tf.add(x, tf.pad(tf.sub(smoothInner, inner), [[0, 0], [1, 1], [1, 1], [0, 0]]));
      return tf.clipByValue(tf.add(smooth, tf.mul(tf.sub(x, smooth), f)), 0, 1) as tf.Tensor4D;
    });
}
