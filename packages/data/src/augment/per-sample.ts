import { tf, type Rng } from '@kiln/core';

/** One uniform draw per example in [low, high), shaped [N, 1, 1, 1] to broadcast over an image batch. */
export function perSampleUniform(n: number, rng: Rng, low: number, high: number): tf.Tensor4D {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.uniform(low, high);
  return tf.tensor4d(v, [n, 1, 1, 1]);
}

/** One Bernoulli(p) draw per example, shaped [N, 1, 1, 1] (bool). */
export function perSampleMask(n: number, rng: Rng, p: number): tf.Tensor4D {
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.next() < p ? 1 : 0;
  return tf.tensor4d(v, [n, 1, 1, 1], 'bool');
}

/** `on` where the per-example mask is set, `off` elsewhere. */
export function selectPerSample(mask: tf.Tensor4D, on: tf.Tensor4D, off: tf.Tensor4D): tf.Tensor4D {
  return tf.where(tf.broadcastTo(mask, on.shape), on, off) as tf.Tensor4D;
}

/** A [low, high] range from a single magnitude m (→ [centre − m, centre + m]) or an explicit pair. */
export function rangeOf(v: number | [number, number], centre: number): [number, number] {
  return typeof v === 'number' ? [centre - v, centre + v] : v;
}

/** A window inside an H × W image, in pixels. */
export interface Region {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * A random window whose area is a fraction in `scale` of the image and whose width/height ratio is
 * drawn log-uniformly from `ratio`, at a uniform position; up to ten draws, null if none fits (the
 * sampling of Inception-style crops and of random erasing).
 */
export function sampleRegion(h: number, w: number, scale: [number, number], ratio: [number, number], rng: Rng): Region | null {
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = h * w * rng.uniform(scale[0], scale[1]);
    const r = Math.exp(rng.uniform(Math.log(ratio[0]), Math.log(ratio[1])));
    const width = Math.round(Math.sqrt(area * r));
    const height = Math.round(Math.sqrt(area / r));
    if (width >= 1 && height >= 1 && width <= w && height <= h) return { top: rng.int(h - height + 1), left: rng.int(w - width + 1), height, width };
  }
  return null;
}
