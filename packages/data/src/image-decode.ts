import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { ConfigError, DataFormatError } from '@kiln/core';

/** A decoded image: `height × width × channels` values in [0, 1], row-major, channels last. */
export interface DecodedImage {
  /** Pixels per row. */
  width: number;
  /** Rows. */
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** Values in [0, 1], HWC row-major. */
  data: Float32Array;
}

/** Larger images are refused before decoding, so a corrupt header cannot demand gigabytes. */
const MAX_PIXELS = 64 * 1024 * 1024;

const isPng = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a;
const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

function problemOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Decodes a PNG or JPEG (told apart by their magic bytes, not the file name) into `channels`
 * channels: colour is reduced to grey with BT.601 luma weights, grey is repeated to RGB, and alpha
 * is dropped. Decoding is done by pngjs and jpeg-js (pure JavaScript, so it runs in worker threads).
 */
export function decodeImage(bytes: Uint8Array, file: string, channels: 1 | 3 = 3): DecodedImage {
  if (channels !== 1 && channels !== 3) throw new ConfigError('decodeImage.channels', '1 or 3', channels);
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  if (isPng(bytes)) {
    if (bytes.length < 24) throw new DataFormatError(file, 'PNG truncated inside its header', { offset: bytes.length, expected: 'at least 24 bytes' });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const w = dv.getUint32(16);
    const h = dv.getUint32(20);
    if (w === 0 || h === 0 || w * h > MAX_PIXELS) throw new DataFormatError(file, 'PNG declares an impossible size', { offset: 16, expected: `1..${MAX_PIXELS} pixels`, found: `${w}×${h}` });
    try {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      rgba = png.data;
    } catch (e) {
      throw new DataFormatError(file, `unreadable PNG: ${problemOf(e)}`, { offset: 0 });
    }
  } else if (isJpeg(bytes)) {
    try {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 512, tolerantDecoding: false });
      ({ width, height } = img);
      rgba = img.data;
    } catch (e) {
      throw new DataFormatError(file, `unreadable JPEG: ${problemOf(e)}`, { offset: 0 });
    }
    if (!(width > 0 && height > 0) || rgba.length !== width * height * 4) {
      throw new DataFormatError(file, 'unreadable JPEG: no image data', { offset: 0, found: `${width}×${height}` });
    }
  } else {
    throw new DataFormatError(file, 'not a PNG or JPEG image', {
      offset: 0,
      expected: 'PNG (89 50 4e 47 0d 0a 1a 0a) or JPEG (ff d8 ff)',
      found: [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ') || 'an empty file',
    });
  }
  const n = width * height;
  const data = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    const r = rgba[4 * p] / 255;
    const g = rgba[4 * p + 1] / 255;
    const b = rgba[4 * p + 2] / 255;
    if (channels === 1) data[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else {
      data[3 * p] = r;
      data[3 * p + 1] = g;
      data[3 * p + 2] = b;
    }
  }
  return { width, height, channels, data };
}
