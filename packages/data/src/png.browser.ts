import type { tf } from '@kiln/core';
import { imageGrid, writePng, type ImageGridOptions } from './png-writer.js';

export type { ImageGridOptions } from './png-writer.js';

/**
 * Encodes 8-bit pixels (`height × width × channels`, channels 1, 3 or 4, row-major) as a PNG file.
 * The browser build stores the image data uncompressed (no synchronous deflate in browsers): the
 * same pixels as in Node, in a larger file.
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Uint8Array {
  return writePng(pixels, width, height, channels);
}

/** Lays a batch [N, H, W, C] (C = 1 or 3) out as a grid and encodes it as a PNG. */
export async function imageGridPng(images: tf.Tensor4D, options: ImageGridOptions = {}): Promise<Uint8Array> {
  const g = await imageGrid(images, options);
  return encodePng(g.pixels, g.width, g.height, g.channels);
}
