import { PNG } from 'pngjs';
import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';

/**
 * Encodes 8-bit pixels (`height × width × channels`, channels 1, 3 or 4, row-major) as a PNG file.
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Uint8Array {
  if (pixels.length !== width * height * channels) throw new ConfigError('encodePng.pixels', `${width}×${height}×${channels} = ${width * height * channels} bytes`, `${pixels.length} bytes`);
  const png = new PNG({ width, height });
  for (let p = 0; p < width * height; p++) {
    const s = p * channels;
    const grey = channels === 1;
    png.data[4 * p] = pixels[s];
    png.data[4 * p + 1] = grey ? pixels[s] : pixels[s + 1];
    png.data[4 * p + 2] = grey ? pixels[s] : pixels[s + 2];
    png.data[4 * p + 3] = channels === 4 ? pixels[s + 3] : 255;
  }
  return new Uint8Array(PNG.sync.write(png));
}

/** Options of `imageGridPng`. */
export interface ImageGridOptions {
  /** Images per row (default: ⌈√N⌉). */
  columns?: number;
  /** Pixels of background between and around images (default 2). */
  padding?: number;
  /** Value range mapped to 0–255 (default [0, 1]); values outside are clipped. */
  range?: [number, number];
}

/** Lays a batch [N, H, W, C] (C = 1 or 3) out as a grid and encodes it as a PNG. */
export async function imageGridPng(images: tf.Tensor4D, options: ImageGridOptions = {}): Promise<Uint8Array> {
  const [n, h, w, c] = images.shape;
  if (c !== 1 && c !== 3) throw new ShapeMismatchError('imageGridPng', 'images [N, H, W, 1 or 3]', images.shape);
  const cols = options.columns ?? Math.ceil(Math.sqrt(n));
  if (!(Number.isInteger(cols) && cols >= 1)) throw new ConfigError('imageGridPng.columns', 'a positive integer', options.columns);
  const pad = options.padding ?? 2;
  const [lo, hi] = options.range ?? [0, 1];
  const rows = Math.max(1, Math.ceil(n / cols));
  const gw = cols * (w + pad) + pad;
  const gh = rows * (h + pad) + pad;
  const values = await images.data();
  const out = new Uint8Array(gw * gh * c);
  for (let i = 0; i < n; i++) {
    const oy = pad + Math.floor(i / cols) * (h + pad);
    const ox = pad + (i % cols) * (w + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) {
          const v = (values[((i * h + y) * w + x) * c + k] - lo) / (hi - lo);
          out[((oy + y) * gw + ox + x) * c + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
        }
      }
    }
  }
  return encodePng(out, gw, gh, c);
}
