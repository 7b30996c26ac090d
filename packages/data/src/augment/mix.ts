import { tf, ConfigError, ShapeMismatchError, type Rng } from '@kiln/core';
import type { BatchAugmentation, LabelledBatch } from './augmentation.js';

/** A Gamma(k, 1) deviate by Marsaglia & Tsang (2000); k < 1 is boosted with U^(1/k). */
export function sampleGamma(k: number, rng: Rng): number {
  if (k < 1) return sampleGamma(k + 1, rng) * Math.pow(rng.next() || Number.MIN_VALUE, 1 / k);
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let z: number;
    let v: number;
    do {
      z = rng.normal();
      v = 1 + c * z;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (Math.log(u || Number.MIN_VALUE) < 0.5 * z * z + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** A Beta(a, b) deviate as G_a / (G_a + G_b). */
export function sampleBeta(a: number, b: number, rng: Rng): number {
  const x = sampleGamma(a, rng);
  const y = sampleGamma(b, rng);
  return x / (x + y);
}

/** Labels as per-class targets [N, K]: integer labels are one-hot encoded, targets pass through. */
function targets(y: tf.Tensor, numClasses: number): tf.Tensor2D {
  if (y.rank === 1) return tf.oneHot(tf.cast(y, 'int32') as tf.Tensor1D, numClasses).toFloat() as tf.Tensor2D;
  if (y.rank === 2 && y.shape[1] === numClasses) return y.clone() as tf.Tensor2D;
  throw new ShapeMismatchError('mixUp/cutMix labels', `[N] class indices or [N, ${numClasses}] targets`, y.shape);
}

/** Options of `mixUp` and `cutMix`. */
export interface MixOptions {
  /** Concentration α of the Beta(α, α) mixing weight (default 1: uniform). */
  alpha?: number;
  /** Number of classes, for the mixed one-hot targets. */
  numClasses: number;
}

function check(name: string, o: MixOptions): number {
  const alpha = o.alpha ?? 1;
  if (!(alpha > 0)) throw new ConfigError(`${name}.alpha`, 'a number > 0', o.alpha);
  if (!(Number.isInteger(o.numClasses) && o.numClasses >= 2)) throw new ConfigError(`${name}.numClasses`, 'an integer >= 2', o.numClasses);
  return alpha;
}

/**
 * MixUp (Zhang et al. 2018): one λ ~ Beta(α, α) per batch; each example is blended with a randomly
 * paired one, x' = λ·x + (1 − λ)·x[π], and so are its targets. Labels come out as [N, K] targets.
 */
export function mixUp(options: MixOptions): BatchAugmentation {
  const alpha = check('mixUp', options);
  return ({ x, y }: LabelledBatch, rng: Rng) => {
    const lam = sampleBeta(alpha, alpha, rng);
    const perm = rng.permutation(x.shape[0]);
    return tf.tidy(() => {
      const p = tf.tensor1d(perm, 'int32');
      const t = targets(y, options.numClasses);
      return {
        x: tf.add(tf.mul(x, lam), tf.mul(tf.gather(x, p), 1 - lam)) as tf.Tensor4D,
        y: tf.add(tf.mul(t, lam), tf.mul(tf.gather(t, p), 1 - lam)),
      };
    });
  };
}

/**
 * CutMix (Yun et al. 2019): one λ ~ Beta(α, α) per batch sets a box of area (1 − λ)·H·W at a random
 * centre (clipped to the image); each example gets that box from a randomly paired one, and the
 * targets are mixed by the box's actual area.
 */
export function cutMix(options: MixOptions): BatchAugmentation {
  const alpha = check('cutMix', options);
  return ({ x, y }: LabelledBatch, rng: Rng) => {
    const [n, h, w] = x.shape;
    const lam = sampleBeta(alpha, alpha, rng);
    const perm = rng.permutation(n);
    const cut = Math.sqrt(1 - lam);
    const ch = Math.round(h * cut);
    const cw = Math.round(w * cut);
    const cy = rng.int(h);
    const cx = rng.int(w);
    const top = Math.max(cy - Math.floor(ch / 2), 0);
    const bottom = Math.min(cy + Math.ceil(ch / 2), h);
    const left = Math.max(cx - Math.floor(cw / 2), 0);
    const right = Math.min(cx + Math.ceil(cw / 2), w);
    const mask = new Float32Array(h * w);
    for (let yy = top; yy < bottom; yy++) mask.fill(1, yy * w + left, yy * w + right);
    const pasted = ((bottom - top) * (right - left)) / (h * w);
    return tf.tidy(() => {
      const p = tf.tensor1d(perm, 'int32');
      const m = tf.tensor4d(mask, [1, h, w, 1]);
      const t = targets(y, options.numClasses);
      return {
        x: tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(tf.gather(x, p), m)) as tf.Tensor4D,
        y: tf.add(tf.mul(t, 1 - pasted), tf.mul(tf.gather(t, p), pasted)),
      };
    });
  };
}
