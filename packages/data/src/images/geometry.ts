import { ConfigError } from '@kiln/core';

/**
 * How an image of another size is brought to the target `[h, w]`:
 * - `stretch`: scaled to exactly `[h, w]`, aspect ratio not kept (Keras' `image_dataset_from_directory` default);
 * - `shorter-side`: scaled, aspect kept, until it covers `[h, w]`, then centre-cropped — for a square
 *   target exactly torchvision's `Resize(size)` + `CenterCrop(size)`;
 * - `pad`: scaled, aspect kept, to fit inside `[h, w]`, the rest filled with zeros, image centred.
 */
export type ResizeMode = 'stretch' | 'shorter-side' | 'pad';

/** Every `ResizeMode`, for checking a user's `resize` option. */
export const RESIZE_MODES: readonly ResizeMode[] = ['stretch', 'shorter-side', 'pad'];

/** What to do to a `srcH × srcW` image: scale to `resize`, then cut out `crop` or add `pad` (pixels per side). */
export interface ResizePlan {
  /** `[height, width]` the whole image is scaled to first. */
  resize: [number, number];
  /** `shorter-side` only: where the target-size window starts in the scaled image. */
  crop?: {
    /** Rows of the scaled image above the window. */
    top: number;
    /** Columns of the scaled image left of the window. */
    left: number;
  };
  /** `pad` only: zero pixels added around the scaled image to reach the target size. */
  pad?: {
    /** Rows added above. */
    top: number;
    /** Rows added below (the odd row, when there is one). */
    bottom: number;
    /** Columns added on the left. */
    left: number;
    /** Columns added on the right (the odd column, when there is one). */
    right: number;
  };
}

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop offsets use it). */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The resize plan of one image. `shorter-side` follows torchvision exactly: the binding side becomes
 * the target and the other `floor(target · long / short)` (its `int(...)`), and the crop starts at
 * `round((resized − target) / 2)` with Python's rounding. `pad` rounds the free side to the nearest
 * pixel and puts the odd padding pixel at the bottom/right.
 */
export function resizePlan(srcH: number, srcW: number, size: readonly [number, number], mode: ResizeMode): ResizePlan {
  const [h, w] = size;
  if (mode === 'stretch') return { resize: [h, w] };
  if (mode === 'shorter-side') {
    const heightBinds = h / srcH >= w / srcW;
    const rh = heightBinds ? h : Math.floor((w * srcH) / srcW);
    const rw = heightBinds ? Math.floor((h * srcW) / srcH) : w;
    return { resize: [rh, rw], crop: { top: roundHalfEven((rh - h) / 2), left: roundHalfEven((rw - w) / 2) } };
  }
  if (mode === 'pad') {
    const heightBinds = h / srcH <= w / srcW;
    const rh = heightBinds ? h : Math.min(h, Math.max(1, Math.round((w * srcH) / srcW)));
    const rw = heightBinds ? Math.min(w, Math.max(1, Math.round((h * srcW) / srcH))) : w;
    const top = Math.floor((h - rh) / 2);
    const left = Math.floor((w - rw) / 2);
    return { resize: [rh, rw], pad: { top, bottom: h - rh - top, left, right: w - rw - left } };
  }
  throw new ConfigError('resize', RESIZE_MODES.join(' | '), mode);
}

/**
 * The size a platform decoder shrinks the image to before `finishResize`: the plan's size on the
 * axes that shrink, the source size on those that grow. Decoders are good at antialiased
 * shrinking (sharp shrinks JPEGs while decoding them); growing is done here, the same everywhere.
 */
export function shrunkSize(srcH: number, srcW: number, plan: ResizePlan): [number, number] {
  return [Math.min(srcH, plan.resize[0]), Math.min(srcW, plan.resize[1])];
}

/**
 * Bilinear interpolation along one axis, pixel centres aligned ((x + ½)·in/out − ½) and edges
 * clamped: what PIL's (so torchvision's) bilinear resize does when it enlarges, whose triangle
 * filter then has support 1.
 */
function taps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; f: Float64Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const f = new Float64Array(outSize);
  for (let x = 0; x < outSize; x++) {
    const c = Math.min(inSize - 1, Math.max(0, ((x + 0.5) * inSize) / outSize - 0.5));
    i0[x] = Math.floor(c);
    i1[x] = Math.min(inSize - 1, i0[x] + 1);
    f[x] = c - i0[x];
  }
  return { i0, i1, f };
}

/**
 * Completes a plan on 8-bit RGB (HWC) already shrunk to `shrunkSize`: enlarges the growing axes
 * (bilinear, as above), then centre-crops or zero-pads to `size`.
 */
export function finishResize(rgb: Uint8Array, from: readonly [number, number], plan: ResizePlan, size: readonly [number, number]): Uint8Array {
  const [h0, w0] = from;
  const [rh, rw] = plan.resize;
  let img = rgb;
  if (rh !== h0 || rw !== w0) {
    const ty = taps(h0, rh);
    const tx = taps(w0, rw);
    img = new Uint8Array(rh * rw * 3);
    for (let y = 0; y < rh; y++) {
      const r0 = ty.i0[y] * w0;
      const r1 = ty.i1[y] * w0;
      const fy = ty.f[y];
      for (let x = 0; x < rw; x++) {
        const a = tx.i0[x];
        const b = tx.i1[x];
        const fx = tx.f[x];
        for (let c = 0; c < 3; c++) {
          const top = rgb[(r0 + a) * 3 + c] * (1 - fx) + rgb[(r0 + b) * 3 + c] * fx;
          const bottom = rgb[(r1 + a) * 3 + c] * (1 - fx) + rgb[(r1 + b) * 3 + c] * fx;
          img[(y * rw + x) * 3 + c] = Math.round(top * (1 - fy) + bottom * fy);
        }
      }
    }
  }
  const [h, w] = size;
  if (plan.crop) {
    const { top, left } = plan.crop;
    const out = new Uint8Array(h * w * 3);
    for (let y = 0; y < h; y++) out.set(img.subarray(((y + top) * rw + left) * 3, ((y + top) * rw + left + w) * 3), y * w * 3);
    return out;
  }
  if (plan.pad) {
    const { top, left } = plan.pad;
    const out = new Uint8Array(h * w * 3);
    for (let y = 0; y < rh; y++) out.set(img.subarray(y * rw * 3, (y + 1) * rw * 3), ((y + top) * w + left) * 3);
    return out;
  }
  return img;
}

/** Checks a user's `size` option: two positive integers. */
export function checkSize(size: unknown, where: string): [number, number] {
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new ConfigError(where, '[height, width] as two positive integers', size);
  }
  return [size[0], size[1]];
}

/**
 * 8-bit RGB (HWC) in its most compact exact form: one byte per pixel when every pixel is grey
 * (R = G = B, as for a greyscale file), the RGB bytes themselves otherwise. Decoders hand images
 * over, and folders cache them, in this form; `pixelsToFloat` turns either into model input.
 */
export function compactPixels(rgb: Uint8Array): Uint8Array {
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return rgb;
  const grey = new Uint8Array(rgb.length / 3);
  for (let p = 0; p < grey.length; p++) grey[p] = rgb[3 * p];
  return grey;
}

/** v / 255, and the luma of the grey pixel (v, v, v) by the same expression as an RGB pixel's below. */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);
const GREY_LUMA = Float32Array.from({ length: 256 }, (_, v) => (0.299 * v + 0.587 * v + 0.114 * v) / 255);

/**
 * `compactPixels` output of an image of `pixels` pixels → values in [0, 1] with `channels`
 * channels, HWC; a grey image gives exactly what its RGB form would. One channel is BT.601 luma
 * (0.299 R + 0.587 G + 0.114 B on the encoded values, not rounded to 8 bits), torchvision's
 * `Grayscale` weights; three channels copy RGB. Written into `out` at `at` when given, else into a
 * new array.
 */
export function pixelsToFloat(px: Uint8Array, pixels: number, channels: 1 | 3, out?: Float32Array, at = 0): Float32Array {
  const dst = out ?? new Float32Array(pixels * channels);
  if (px.length === pixels * 3) {
    if (channels === 3) for (let i = 0; i < px.length; i++) dst[at + i] = UNIT[px[i]];
    else for (let p = 0; p < pixels; p++) dst[at + p] = (0.299 * px[3 * p] + 0.587 * px[3 * p + 1] + 0.114 * px[3 * p + 2]) / 255;
  } else if (px.length === pixels) {
    if (channels === 1) for (let p = 0; p < pixels; p++) dst[at + p] = GREY_LUMA[px[p]];
    else {
      for (let p = 0; p < pixels; p++) {
        const v = UNIT[px[p]];
        dst[at + 3 * p] = v;
        dst[at + 3 * p + 1] = v;
        dst[at + 3 * p + 2] = v;
      }
    }
  } else {
    throw new RangeError(`${px.length} bytes are neither ${pixels} grey nor ${pixels * 3} RGB pixels`);
  }
  return dst;
}
