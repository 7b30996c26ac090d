import { ConfigError } from '@kiln/core';
import { checkSize, pixelsToFloat, type ResizeMode } from './images/geometry.js';
import type { DecodedImage, ImageLimits } from './images/image-host.js';
import { SharpHost } from './images/sharp-host.js';

/** Options of {@link decodeImage}. */
export interface DecodeImageOptions extends ImageLimits {
  /** Names the bytes in errors (default 'image'). */
  file?: string;
  /** Output `[height, width]` (default: the image's own, after EXIF orientation). */
  size?: [number, number];
  /** How an image of another aspect ratio is brought to `size` (default 'stretch'); see `ResizeMode`. */
  resize?: ResizeMode;
  /** 1 (BT.601 luma) or 3 (RGB, default). */
  channels?: 1 | 3;
}

/**
 * Decodes image bytes (PNG, JPEG, WebP, GIF, TIFF, AVIF — told apart by content, not name) with the
 * same conversions as `imageFolder`: EXIF orientation applied, any colour space (CMYK, palette, grey,
 * 16-bit) to 8-bit sRGB, alpha flattened on black, then `channels` (1: BT.601 luma). Throws a
 * DataFormatError naming `file` when the bytes are not a readable image.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): Promise<DecodedImage> {
  const file = options.file ?? 'image';
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ConfigError('decodeImage.channels', '1 or 3', channels);
  const host = new SharpHost(options);
  const size = options.size === undefined ? await host.probeBytes(bytes, file) : checkSize(options.size, 'decodeImage.size');
  const px = await host.decodeBytes(bytes, file, { size, resize: options.resize ?? 'stretch', channels });
  const data = pixelsToFloat(px, size[0] * size[1], channels);
  return { height: size[0], width: size[1], channels, data };
}
