import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';

/**
 * A PNG writer with no host dependency, so the same charts and grids are produced in Node and in
 * browsers. The image data stream is zlib: Node passes its `deflateSync`; without one the
 * scanlines go into stored (uncompressed) deflate blocks, which every PNG reader accepts — larger
 * files, same pixels.
 */

/** Compresses bytes into a zlib stream (RFC 1950), e.g. Node's `zlib.deflateSync`. */
export type ZlibDeflate = (raw: Uint8Array) => Uint8Array;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zlib stream of stored deflate blocks (at most 65,535 bytes each) with its Adler-32. */
export function storedZlib(raw: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const out = new Uint8Array(2 + raw.length + 5 * blocks + 4);
  out[0] = 0x78; // deflate, 32 KiB window
  out[1] = 0x01; // no preset dictionary, fastest; (0x78 << 8 | 0x01) % 31 === 0
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * 65535;
    const len = Math.min(65535, raw.length - start);
    out[o++] = b === blocks - 1 ? 1 : 0;
    out[o++] = len & 0xff;
    out[o++] = len >>> 8;
    out[o++] = ~len & 0xff;
    out[o++] = (~len >>> 8) & 0xff;
    out.set(raw.subarray(start, start + len), o);
    o += len;
  }
  let a = 1;
  let s = 0;
  for (let i = 0; i < raw.length; i++) {
    a = (a + raw[i]) % 65521;
    s = (s + a) % 65521;
  }
  new DataView(out.buffer).setUint32(o, ((s << 16) | a) >>> 0);
  return out;
}

const COLOUR_TYPE = { 1: 0, 3: 2, 4: 6 } as const;

/**
 * Encodes 8-bit pixels (`height × width × channels`, channels 1 = grey, 3 = RGB, 4 = RGBA,
 * row-major) as a PNG file, compressing with `deflate` (default: stored blocks).
 */
export function writePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, deflate: ZlibDeflate = storedZlib): Uint8Array {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new ConfigError('encodePng.size', 'positive integer width and height', `${width}×${height}`);
  if (!(channels in COLOUR_TYPE)) throw new ConfigError('encodePng.channels', '1, 3 or 4', channels);
  if (pixels.length !== width * height * channels) throw new ConfigError('encodePng.pixels', `${width}×${height}×${channels} = ${width * height * channels} bytes`, `${pixels.length} bytes`);
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1)); // each scanline: filter type 0, then its bytes
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const idat = deflate(raw);
  const ihdr = new Uint8Array(13);
  const h = new DataView(ihdr.buffer);
  h.setUint32(0, width);
  h.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = COLOUR_TYPE[channels];
  const chunks: [string, Uint8Array][] = [['IHDR', ihdr], ['IDAT', idat], ['IEND', new Uint8Array(0)]];
  const out = new Uint8Array(8 + chunks.reduce((n, [, d]) => n + 12 + d.length, 0));
  out.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(out.buffer);
  let o = 8;
  for (const [type, data] of chunks) {
    view.setUint32(o, data.length);
    for (let i = 0; i < 4; i++) out[o + 4 + i] = type.charCodeAt(i);
    out.set(data, o + 8);
    view.setUint32(o + 8 + data.length, crc32(out, o + 4, o + 8 + data.length));
    o += 12 + data.length;
  }
  return out;
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

/** Lays a batch [N, H, W, C] (C = 1 or 3) out as a grid of 8-bit pixels: `{ pixels, width, height, channels }`. */
export async function imageGrid(images: tf.Tensor4D, options: ImageGridOptions = {}): Promise<{ pixels: Uint8Array; width: number; height: number; channels: 1 | 3 }> {
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
  return { pixels: out, width: gw, height: gh, channels: c };
}
