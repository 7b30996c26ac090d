import { tf, ConfigError, type Rng } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { sampleRegion } from './per-sample.js';

/** Options of `randomErasing`. */
export interface RandomErasingOptions {
  /** Probability that an image gets a rectangle erased (default 0.5). */
  p?: number;
  /** Range of the rectangle's area as a fraction of the image (default [0.02, 0.33]). */
  scale?: [number, number];
  /** Range of its height/width ratio, drawn log-uniformly (default [0.3, 3.3]). */
  ratio?: [number, number];
  /** Value written into the rectangle (default 0). */
  value?: number;
}

/**
 * Random Erasing (Zhong et al. 2020): with probability p, one rectangle of random area and aspect
 * ratio is set to `value`. Up to ten draws are tried per image; if none fits, the image is unchanged.
 */
export function randomErasing(options: RandomErasingOptions = {}): Augmentation {
  const p = options.p ?? 0.5;
  const scale = options.scale ?? [0.02, 0.33];
  const ratio = options.ratio ?? [0.3, 3.3];
  const value = options.value ?? 0;
  if (!(p >= 0 && p <= 1)) throw new ConfigError('randomErasing.p', 'a probability in [0, 1]', p);
  if (!(scale[0] > 0 && scale[1] >= scale[0] && scale[1] <= 1)) throw new ConfigError('randomErasing.scale', 'a range within (0, 1]', scale);
  if (!(ratio[0] > 0 && ratio[1] >= ratio[0])) throw new ConfigError('randomErasing.ratio', 'a range [low, high] with 0 < low <= high', ratio);
  return (x, rng: Rng) => {
    const [n, h, w] = x.shape;
    const mask = new Float32Array(n * h * w);
    for (let i = 0; i < n; i++) {
      if (rng.next() >= p) continue;
      // The ratio option is height/width (torchvision's convention); sampleRegion takes width/height.
      const region = sampleRegion(h, w, scale, [1 / ratio[1], 1 / ratio[0]], rng);
      if (!region) continue;
      for (let yy = region.top; yy < region.top + region.height; yy++) mask.fill(1, i * h * w + yy * w + region.left, i * h * w + yy * w + region.left + region.width);
    }
    return tf.tidy(() => {
      const m = tf.tensor4d(mask, [n, h, w, 1]);
      return tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, value)) as tf.Tensor4D;
    });
  };
}
