import { tf, ConfigError, type Rng } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { perSampleMask, selectPerSample } from './per-sample.js';

/** The augmentations applied one after another; intermediate results are released. */
export function compose(...steps: Augmentation[]): Augmentation {
  return (x, rng) => {
    let cur = x;
    for (const step of steps) {
      const next = step(cur, rng);
      if (cur !== x) cur.dispose();
      cur = next;
    }
    return cur === x ? (x.clone() as tf.Tensor4D) : cur;
  };
}

/** Applies `aug` to each example independently with probability `p` (the others pass through unchanged). */
export function randomApply(aug: Augmentation, p = 0.5): Augmentation {
  if (!(p >= 0 && p <= 1)) throw new ConfigError('randomApply.p', 'a probability in [0, 1]', p);
  return (x, rng: Rng) => {
    const mask = perSampleMask(x.shape[0], rng, p);
    const out = aug(x, rng);
    const y = tf.tidy(() => selectPerSample(mask, out, x));
    mask.dispose();
    out.dispose();
    return y;
  };
}

/**
 * Applies to each example one augmentation chosen at random (by `weights`, default uniform). Each
 * chosen augmentation runs once on the whole batch and the chosen rows are kept, so all examples see
 * the same generator stream whatever was chosen.
 */
export function oneOf(choices: Augmentation[], weights?: number[]): Augmentation {
  if (choices.length === 0) throw new ConfigError('oneOf.choices', 'at least one augmentation', choices);
  const w = weights ?? choices.map(() => 1);
  if (w.length !== choices.length || w.some((v) => !(v >= 0)) || !(w.reduce((a, b) => a + b, 0) > 0)) {
    throw new ConfigError('oneOf.weights', `${choices.length} non-negative weights, not all zero`, weights);
  }
  const total = w.reduce((a, b) => a + b, 0);
  return (x, rng) => {
    const n = x.shape[0];
    const pick = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let u = rng.next() * total;
      let k = 0;
      while (k < w.length - 1 && u >= w[k]) u -= w[k++];
      pick[i] = k;
    }
    let out = x.clone() as tf.Tensor4D;
    for (let k = 0; k < choices.length; k++) {
      const rows = Uint8Array.from(pick, (p) => (p === k ? 1 : 0));
      if (!rows.some((r) => r === 1)) continue;
      const candidate = choices[k](x, rng);
      const next = tf.tidy(() => selectPerSample(tf.tensor4d(rows, [n, 1, 1, 1], 'bool'), candidate, out));
      candidate.dispose();
      out.dispose();
      out = next;
    }
    return out;
  };
}
