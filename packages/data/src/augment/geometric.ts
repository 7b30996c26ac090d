import { tf, ConfigError, ShapeMismatchError, type Rng } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { perSampleMask, rangeOf, selectPerSample } from './per-sample.js';

/** Flips each example left–right with probability `p` (default 0.5). */
export function horizontalFlip(p = 0.5): Augmentation {
  return flip(2, p, 'horizontalFlip');
}

/** Flips each example top–bottom with probability `p` (default 0.5). */
export function verticalFlip(p = 0.5): Augmentation {
  return flip(1, p, 'verticalFlip');
}

function flip(axis: 1 | 2, p: number, name: string): Augmentation {
  if (!(p >= 0 && p <= 1)) throw new ConfigError(`${name}.p`, 'a probability in [0, 1]', p);
  return (x, rng) => {
    const mask = perSampleMask(x.shape[0], rng, p);
    const out = tf.tidy(() => selectPerSample(mask, tf.reverse(x, axis), x));
    mask.dispose();
    return out;
  };
}

/**
 * Rotates each example counter-clockwise by k quarter turns: a fixed k for all, or (k omitted) a
 * random k ∈ {0, 1, 2, 3} per example, which needs square images. Exact: pixels are only moved.
 */
export function rotate90(k?: number): Augmentation {
  if (k !== undefined && !Number.isInteger(k)) throw new ConfigError('rotate90.k', 'an integer number of quarter turns', k);
  return (x, rng) => {
    const [n, h, w] = x.shape;
    // A quarter turn counter-clockwise: out[i][j] = in[j][W − 1 − i], i.e. transpose then flip rows.
    const quarter = (t: tf.Tensor4D) => tf.reverse(tf.transpose(t, [0, 2, 1, 3]), 1) as tf.Tensor4D;
    const turns = [(t: tf.Tensor4D) => t.clone() as tf.Tensor4D, quarter, (t: tf.Tensor4D) => tf.reverse(t, [1, 2]) as tf.Tensor4D, (t: tf.Tensor4D) => tf.reverse(tf.transpose(t, [0, 2, 1, 3]), 2) as tf.Tensor4D];
    if (k !== undefined) return tf.tidy(() => turns[((k % 4) + 4) % 4](x));
    if (h !== w) throw new ShapeMismatchError('rotate90 (random turns)', 'square images [N, S, S, C]', x.shape, 'pass a fixed k to rotate non-square images');
    const pick = Int32Array.from({ length: n }, () => rng.int(4));
    return tf.tidy(() => {
      let out = turns[0](x);
      for (let t = 1; t < 4; t++) {
        const rows = Uint8Array.from(pick, (p) => (p === t ? 1 : 0));
        if (rows.some((r) => r === 1)) out = selectPerSample(tf.tensor4d(rows, [n, 1, 1, 1], 'bool'), turns[t](x), out);
      }
      return out;
    });
  };
}

/** How pixels that come from outside the image are filled. */
export type FillMode = 'constant' | 'reflect' | 'wrap' | 'nearest';

/** Options of `randomAffine`. */
export interface AffineOptions {
  /** Rotation in degrees, counter-clockwise: a magnitude m (uniform in [−m, m]) or a [low, high] range. Default 0. */
  degrees?: number | [number, number];
  /** Largest shift as a fraction of [width, height]; the shift is uniform in [−f·W, f·W] × [−f·H, f·H]. Default none. */
  translate?: [number, number];
  /** Scale factor range [low, high] (zoom in above 1). Default 1. */
  scale?: [number, number];
  /** Horizontal shear angle in degrees: a magnitude or a [low, high] range. Default 0. */
  shear?: number | [number, number];
  /** Sampling of the source image (default 'bilinear'). */
  interpolation?: 'bilinear' | 'nearest';
  /** Filling of pixels mapped from outside the image (default 'constant'). */
  fillMode?: FillMode;
  /** Value for `fillMode: 'constant'` (default 0). */
  fillValue?: number;
}

/** A 2×3 forward matrix [a, b, tx; c, d, ty] in pixel coordinates (x right, y down) about the image centre. */
export type AffineMatrix = [number, number, number, number, number, number];

/**
 * Warps every example of `x` by its forward matrix. tf.image.transform wants, per example, the map
 * from output pixel to input pixel, so each matrix is inverted about the centre ((W−1)/2, (H−1)/2):
 * p_in = A⁻¹ (p_out − c − t) + c.
 */
export function warpAffine(x: tf.Tensor4D, matrices: AffineMatrix[], interpolation: 'bilinear' | 'nearest' = 'bilinear', fillMode: FillMode = 'constant', fillValue = 0): tf.Tensor4D {
  const [n, h, w] = x.shape;
  if (matrices.length !== n) throw new ConfigError('warpAffine.matrices', `one matrix per example (${n})`, matrices.length);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const inv = new Float32Array(n * 8);
  for (let i = 0; i < n; i++) {
    const [a, b, tx, c, d, ty] = matrices[i];
    const det = a * d - b * c;
    if (!Number.isFinite(det) || Math.abs(det) < 1e-12) throw new ConfigError(`warpAffine.matrices[${i}]`, 'an invertible matrix', matrices[i]);
    const ia = d / det;
    const ib = -b / det;
    const ic = -c / det;
    const id = a / det;
    const ox = cx + tx;
    const oy = cy + ty;
    inv.set([ia, ib, cx - ia * ox - ib * oy, ic, id, cy - ic * ox - id * oy, 0, 0], i * 8);
  }
  return tf.tidy(() => tf.image.transform(x, tf.tensor2d(inv, [n, 8]), interpolation, fillMode, fillValue, [h, w]) as tf.Tensor4D);
}

/** The forward matrix of a rotation θ (counter-clockwise on screen), shear φ, scale s and shift (tx, ty). */
export function affineMatrix(degrees: number, scale: number, shearDegrees: number, tx: number, ty: number): AffineMatrix {
  const t = (degrees * Math.PI) / 180;
  const sh = Math.tan((shearDegrees * Math.PI) / 180);
  // With y pointing down, a counter-clockwise turn is [cos, sin; −sin, cos]; shear then scale act first.
  const r = [Math.cos(t), Math.sin(t), -Math.sin(t), Math.cos(t)];
  const m = [scale * r[0], scale * (r[0] * sh + r[1]), scale * r[2], scale * (r[2] * sh + r[3])];
  return [m[0], m[1], tx, m[2], m[3], ty];
}

/** A random affine warp per example: rotation, translation, scale and shear drawn from the given ranges. */
export function randomAffine(options: AffineOptions): Augmentation {
  const deg = rangeOf(options.degrees ?? 0, 0);
  const shear = rangeOf(options.shear ?? 0, 0);
  const scale = options.scale ?? [1, 1];
  const translate = options.translate ?? [0, 0];
  if (!(scale[0] > 0 && scale[1] >= scale[0])) throw new ConfigError('randomAffine.scale', 'a range [low, high] with 0 < low <= high', scale);
  if (!(translate[0] >= 0 && translate[1] >= 0)) throw new ConfigError('randomAffine.translate', 'fractions >= 0', translate);
  return (x, rng: Rng) => {
    const [n, h, w] = x.shape;
    const mats: AffineMatrix[] = [];
    for (let i = 0; i < n; i++) {
      const a = rng.uniform(deg[0], deg[1]);
      const tx = rng.uniform(-translate[0], translate[0]) * w;
      const ty = rng.uniform(-translate[1], translate[1]) * h;
      const s = rng.uniform(scale[0], scale[1]);
      const sh = rng.uniform(shear[0], shear[1]);
      mats.push(affineMatrix(a, s, sh, tx, ty));
    }
    return warpAffine(x, mats, options.interpolation, options.fillMode, options.fillValue);
  };
}

type WarpOptions = Pick<AffineOptions, 'interpolation' | 'fillMode' | 'fillValue'>;

/** Rotation by an angle drawn from [−m, m] degrees (or a [low, high] range); any angle. */
export function rotate(degrees: number | [number, number], options: WarpOptions = {}): Augmentation {
  return randomAffine({ ...options, degrees });
}

/** Zoom by a factor drawn from [1 − m, 1 + m] (or a [low, high] range); above 1 zooms in. */
export function zoom(range: number | [number, number], options: WarpOptions = {}): Augmentation {
  return randomAffine({ ...options, scale: rangeOf(range, 1) });
}

/** Shift by up to fx·W and fy·H pixels. Whole-pixel shifts with 'nearest' interpolation move pixels exactly. */
export function translate(fx: number, fy = fx, options: WarpOptions = {}): Augmentation {
  return randomAffine({ ...options, translate: [fx, fy] });
}

/** Horizontal shear by an angle drawn from [−m, m] degrees (or a [low, high] range). */
export function shear(degrees: number | [number, number], options: WarpOptions = {}): Augmentation {
  return randomAffine({ ...options, shear: degrees });
}

/** The same fixed affine warp on every example (deterministic; the generator is not used). */
export function affine(matrix: AffineMatrix, options: WarpOptions = {}): Augmentation {
  return (x) => warpAffine(x, Array.from({ length: x.shape[0] }, () => matrix), options.interpolation, options.fillMode, options.fillValue);
}
