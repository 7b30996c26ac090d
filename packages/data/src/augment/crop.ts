import { tf, ConfigError, ShapeMismatchError, type Rng } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { sampleRegion } from './per-sample.js';

/**
 * Cuts boxes (top, left, height, width in pixels) out of `x` and resizes each to `size`. When a box
 * already has the output size, cropAndResize samples exactly its pixel centres, so plain crops are
 * exact copies; otherwise it interpolates bilinearly.
 */
export function cropBoxes(x: tf.Tensor4D, boxes: { image: number; top: number; left: number; height: number; width: number }[], size: [number, number]): tf.Tensor4D {
  const [, h, w] = x.shape;
  const dy = Math.max(h - 1, 1);
  const dx = Math.max(w - 1, 1);
  const b = new Float32Array(boxes.length * 4);
  const ind = new Int32Array(boxes.length);
  boxes.forEach((box, i) => {
    b.set([box.top / dy, box.left / dx, (box.top + box.height - 1) / dy, (box.left + box.width - 1) / dx], i * 4);
    ind[i] = box.image;
  });
  return tf.tidy(() => tf.image.cropAndResize(x, tf.tensor2d(b, [boxes.length, 4]), tf.tensor1d(ind, 'int32'), size, 'bilinear'));
}

function checkSize(name: string, size: [number, number] | undefined, h: number, w: number, shape: number[]): [number, number] {
  const s = size ?? [h, w];
  if (!(Number.isInteger(s[0]) && Number.isInteger(s[1]) && s[0] >= 1 && s[1] >= 1)) throw new ConfigError(`${name}.size`, 'positive integers [height, width]', size);
  if (s[0] > h || s[1] > w) throw new ShapeMismatchError(name, `images of at least ${s[0]}×${s[1]}`, shape);
  return s;
}

/** Options of `randomCrop`. */
export interface RandomCropOptions {
  /** Output [height, width] (default: the input size, as after padding). */
  size?: [number, number];
  /** Pixels of padding on every side before cropping (default 0). */
  padding?: number;
  /** Value of the padding (default 0). */
  fill?: number;
}

/** Pads each image, then cuts a window of `size` at a random position (the CIFAR "crop:4" recipe). */
export function randomCrop(options: RandomCropOptions = {}): Augmentation {
  const pad = options.padding ?? 0;
  if (!Number.isInteger(pad) || pad < 0) throw new ConfigError('randomCrop.padding', 'an integer >= 0', options.padding);
  return (x, rng: Rng) => {
    const [n, h, w] = x.shape;
    const size = options.size ?? [h, w];
    const padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], options.fill ?? 0);
    const [ph, pw] = [h + 2 * pad, w + 2 * pad];
    const s = checkSize('randomCrop', size, ph, pw, padded.shape);
    const boxes = Array.from({ length: n }, (_, i) => ({ image: i, top: rng.int(ph - s[0] + 1), left: rng.int(pw - s[1] + 1), height: s[0], width: s[1] }));
    const out = cropBoxes(padded, boxes, s);
    padded.dispose();
    return out;
  };
}

/** The central window of `size` (deterministic). */
export function centerCrop(size: [number, number]): Augmentation {
  return (x) => {
    const [, h, w] = x.shape;
    const s = checkSize('centerCrop', size, h, w, x.shape);
    return tf.slice(x, [0, Math.floor((h - s[0]) / 2), Math.floor((w - s[1]) / 2), 0], [-1, s[0], s[1], -1]);
  };
}

/** Options of `randomResizedCrop`. */
export interface RandomResizedCropOptions {
  /** Output [height, width]. */
  size: [number, number];
  /** Range of the window's area as a fraction of the image (default [0.08, 1]). */
  scale?: [number, number];
  /** Range of the window's width/height ratio, drawn log-uniformly (default [3/4, 4/3]). */
  ratio?: [number, number];
}

/**
 * A random window of random area and aspect ratio, resized to `size` (Szegedy et al. 2015, the
 * Inception recipe). Ten draws are tried; if none fits, the largest centred window within the ratio
 * range is used.
 */
export function randomResizedCrop(options: RandomResizedCropOptions): Augmentation {
  const scale = options.scale ?? [0.08, 1];
  const ratio = options.ratio ?? [3 / 4, 4 / 3];
  if (!(scale[0] > 0 && scale[1] >= scale[0] && scale[1] <= 1)) throw new ConfigError('randomResizedCrop.scale', 'a range within (0, 1]', scale);
  if (!(ratio[0] > 0 && ratio[1] >= ratio[0])) throw new ConfigError('randomResizedCrop.ratio', 'a range [low, high] with 0 < low <= high', ratio);
  return (x, rng: Rng) => {
    const [n, h, w] = x.shape;
    const boxes = [];
    for (let i = 0; i < n; i++) {
      const region = sampleRegion(h, w, scale, ratio, rng);
      if (region) {
        boxes.push({ image: i, ...region });
        continue;
      }
      const r = Math.min(Math.max(w / h, ratio[0]), ratio[1]);
      const bw = Math.min(w, Math.round(h * r));
      const bh = Math.min(h, Math.round(bw / r));
      boxes.push({ image: i, top: Math.floor((h - bh) / 2), left: Math.floor((w - bw) / 2), height: bh, width: bw });
    }
    return cropBoxes(x, boxes, options.size);
  };
}

/** Options of `patches`. */
export interface PatchOptions {
  /** Patch [height, width]. */
  size: [number, number];
  /** Grid mode: patches every `stride` pixels (default: the patch size, i.e. non-overlapping). */
  stride?: [number, number];
  /** Random mode: this many patches per image at random offsets (instead of a grid). */
  count?: number;
}

/**
 * Cuts patches out of every image: on a regular grid, or `count` at random offsets. Returns
 * [N · P, h, w, C], the P patches of image 0 first; pixels are copied exactly.
 */
export function patches(options: PatchOptions): Augmentation {
  const [ph, pw] = options.size;
  if (options.count !== undefined && !(Number.isInteger(options.count) && options.count >= 1)) throw new ConfigError('patches.count', 'a positive integer', options.count);
  return (x, rng: Rng) => {
    const [n, h, w] = x.shape;
    checkSize('patches', options.size, h, w, x.shape);
    const boxes = [];
    for (let i = 0; i < n; i++) {
      if (options.count !== undefined) {
        for (let k = 0; k < options.count; k++) boxes.push({ image: i, top: rng.int(h - ph + 1), left: rng.int(w - pw + 1), height: ph, width: pw });
      } else {
        const [sy, sx] = options.stride ?? options.size;
        if (!(sy >= 1 && sx >= 1)) throw new ConfigError('patches.stride', 'positive integers', options.stride);
        for (let top = 0; top + ph <= h; top += sy) for (let left = 0; left + pw <= w; left += sx) boxes.push({ image: i, top, left, height: ph, width: pw });
      }
    }
    return cropBoxes(x, boxes, [ph, pw]);
  };
}
