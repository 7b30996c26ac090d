/**
 * The Node image host: files read defensively, decoded and resized by `sharp` (libvips). It runs
 * on whichever thread creates it: the calling thread for `decodeImage`/`loadImages`, each decoding
 * worker of a folder (decode-worker.ts).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { DataFormatError, NotFoundError } from '@kiln/core';
import { compactPixels, finishResize, resizePlan, shrunkSize } from './geometry.js';
import { DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, type DecodeSpec, type ImageHost, type ImageLimits } from './image-host.js';
import type { ListDir } from './layout.js';
import { decodePlainJpeg, plainJpegSize, SMALL_JPEG_MAX_PIXELS } from './small-jpeg.js';

/**
 * sharp, loaded when the first image is decoded: a process that decodes none (IDX, CIFAR or CSV
 * pixels) starts without loading libvips, about 40 ms of every `kiln` command's start-up.
 */
let sharpLoaded: Promise<(input: Uint8Array, options?: SharpOptions) => Sharp> | undefined;
function sharp(input: Uint8Array, options?: SharpOptions): Promise<Sharp> {
  sharpLoaded ??= import('sharp').then((m) => m.default);
  return sharpLoaded.then((make) => make(input, options));
}

/** Bytes read to probe a header: JPEG puts EXIF (≤ 64 KB) and ICC segments before its frame header. */
const PROBE_BYTES = 256 * 1024;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a file, or its first `limit` bytes, refusing anything that is not a regular file of at most
 * `maxBytes`. It opens non-blocking (a FIFO would otherwise block `open` until a writer comes) and
 * checks the opened descriptor, so a name swapped for a device after listing is still caught, and it
 * never reads more than the size checked (a link to /dev/zero cannot fill memory).
 *
 * Synchronous on purpose: image files are small and this runs on decoding threads, where four
 * promise round trips per file cost more main-loop time than the read itself (measured: the
 * FileHandle API took ~0.4 ms of JavaScript time per 1 KB file).
 */
export function readRegularFile(file: string, maxBytes: number, limit = Infinity): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`image file '${file}'`, [file]);
    throw new DataFormatError(file, `cannot open: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new DataFormatError(file, 'not a regular file', { expected: 'an image file', found: kindOf(st) });
    if (st.size > maxBytes) throw new DataFormatError(file, 'file larger than the size limit', { expected: `at most ${maxBytes} bytes (option maxFileBytes)`, found: `${st.size} bytes` });
    if (st.size === 0) throw new DataFormatError(file, 'empty file', { expected: 'an image', found: '0 bytes' });
    const n = Math.min(st.size, limit);
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const read = readSync(fd, buf, got, n - got, got);
      if (read === 0) break;
      got += read;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

const sharpProblem = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/^Input (buffer|file) /, '');

function hexHead(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ') || 'an empty file';
}

/** Sharp on files: EXIF orientation applied, any colour space to sRGB, alpha flattened on black. */
export class SharpHost implements ImageHost {
  readonly maxPixels: number;
  readonly maxFileBytes: number;

  /** Whether small plain JPEGs skip libvips (small-jpeg.ts); off only to compare the two decoders. */
  readonly smallJpeg: boolean;

  constructor(limits: ImageLimits & { smallJpeg?: boolean } = {}) {
    this.maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
    this.maxFileBytes = limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.smallJpeg = limits.smallJpeg ?? true;
  }

  private async headerOf(file: string, bytes: Buffer, complete: boolean): Promise<{ height: number; width: number }> {
    let meta: Metadata;
    try {
      meta = await (await sharp(bytes)).metadata();
    } catch (e) {
      // A header longer than the probe (huge EXIF/ICC blocks) is read in full before giving up.
      if (!complete) return this.headerOf(file, readRegularFile(file, this.maxFileBytes), true);
      throw new DataFormatError(file, `unreadable image: ${sharpProblem(e)}`, { offset: 0, expected: 'a PNG, JPEG, WebP, GIF, TIFF or AVIF image', found: hexHead(bytes) });
    }
    const { width, height } = meta.autoOrient ?? meta;
    if (!(width > 0 && height > 0)) throw new DataFormatError(file, 'image header declares no size', { found: `${width}×${height}` });
    if (width * height > this.maxPixels) {
      throw new DataFormatError(file, 'image declares more pixels than the limit', { expected: `at most ${this.maxPixels} pixels (option maxPixels)`, found: `${width}×${height} = ${width * height}`, hint: 'a small file declaring a huge size is a decompression bomb; raise maxPixels only for files you trust' });
    }
    return { height, width };
  }

  async probe(file: string): Promise<{ height: number; width: number }> {
    const bytes = readRegularFile(file, this.maxFileBytes, PROBE_BYTES);
    // A small plain JPEG read whole has its size in its frame header (and no orientation to apply):
    // ~2 µs instead of ~140 µs through libvips.
    const plain = this.smallJpeg && bytes.length < PROBE_BYTES ? plainJpegSize(bytes) : undefined;
    if (plain && plain.height * plain.width <= Math.min(SMALL_JPEG_MAX_PIXELS, this.maxPixels)) return plain;
    return this.headerOf(file, bytes, bytes.length < PROBE_BYTES);
  }

  /** The oriented `[height, width]` of in-memory bytes. */
  async probeBytes(bytes: Uint8Array, file: string): Promise<[number, number]> {
    const { height, width } = await this.headerOf(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), true);
    return [height, width];
  }

  async decode(file: string, spec: DecodeSpec): Promise<Uint8Array> {
    return this.decodeBytes(readRegularFile(file, this.maxFileBytes), file, spec);
  }

  /** A small plain JPEG's size when the fast path (small-jpeg.ts) takes `bytes`, else undefined. */
  private plainSize(bytes: Uint8Array): { height: number; width: number } | undefined {
    const small = this.smallJpeg ? plainJpegSize(bytes) : undefined;
    return small && small.height * small.width <= Math.min(SMALL_JPEG_MAX_PIXELS, this.maxPixels) ? small : undefined;
  }

  /**
   * `decode`, but only for a file that costs a few tens of µs of this thread: a small plain JPEG
   * already at `spec.size` (no resizing), read and decoded by small-jpeg.ts, never libvips. Any
   * other file, or one that cannot be read, gives undefined without a decision being made; for a
   * cheap one `claim()` decides whether to decode it here (false: someone else does, undefined).
   * Once claimed the file is decoded here whatever it takes (libvips if the fast path refuses it),
   * errors thrown as `decode` throws them.
   */
  async decodeIfCheap(file: string, spec: DecodeSpec, claim: () => boolean): Promise<Uint8Array | undefined> {
    let bytes: Buffer;
    try {
      bytes = readRegularFile(file, this.maxFileBytes);
    } catch {
      return undefined;
    }
    const small = this.plainSize(bytes);
    if (!small || small.height !== spec.size[0] || small.width !== spec.size[1] || !claim()) return undefined;
    return this.decodeBytes(bytes, file, spec);
  }

  /** Decodes in-memory bytes (to `compactPixels` form, like `decode`); `file` names them in errors. */
  async decodeBytes(bytes: Uint8Array, file: string, spec: DecodeSpec): Promise<Uint8Array> {
    const small = this.plainSize(bytes);
    if (small) {
      const plan = resizePlan(small.height, small.width, spec.size, spec.resize);
      const [h, w] = shrunkSize(small.height, small.width, plan);
      const px = h === small.height && w === small.width ? await decodePlainJpeg(bytes, small) : undefined;
      if (px) {
        // Already at the target size (the usual case for a folder of small images): nothing to resize.
        if (h === spec.size[0] && w === spec.size[1] && plan.resize[0] === h && plan.resize[1] === w) return px;
        return compactPixels(finishResize(px.length === h * w ? greyToRgb(px) : px, [h, w], plan, spec.size));
      }
    }
    // sharp enforces maxPixels itself (limitInputPixels) when it decodes, so a size known from the probe can be trusted.
    const src = spec.source ?? (await this.headerOf(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), true));
    const plan = resizePlan(src.height, src.width, spec.size, spec.resize);
    const [h, w] = shrunkSize(src.height, src.width, plan);
    let rgb: Buffer;
    try {
      // failOn 'truncated': a cut-off file is an error (libjpeg would pad it with grey), while the
      // harmless warnings real-world JPEGs carry ("extraneous bytes before marker") are not.
      // The linear kernel is the triangle filter PIL's bilinear resize uses, antialiased when shrinking.
      let img = (await sharp(bytes, { autoOrient: true, failOn: 'truncated', limitInputPixels: this.maxPixels, sequentialRead: true })).flatten({ background: { r: 0, g: 0, b: 0 } });
      if (h !== src.height || w !== src.width) img = img.resize(w, h, { fit: 'fill', kernel: 'linear' });
      const { data, info } = await img.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.width !== w || info.height !== h || info.channels !== 3 || data.length !== h * w * 3) {
        throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${w}×${h}×3`);
      }
      rgb = data;
    } catch (e) {
      throw new DataFormatError(file, `unreadable image: ${sharpProblem(e)}`, { offset: 0 });
    }
    return compactPixels(finishResize(new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength), [h, w], plan, spec.size));
  }
}

function greyToRgb(grey: Uint8Array): Uint8Array {
  const rgb = new Uint8Array(grey.length * 3);
  for (let p = 0; p < grey.length; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = grey[p];
  return rgb;
}

/** A path below `root` from the '/'-joined relative path a `ListDir` gives. */
export const joinPath = (root: string, rel: string): string => path.join(root, ...rel.split('/'));

/** A `ListDir` on the file system below `root`. */
export function fsLister(root: string): ListDir {
  return async (dir) => {
    const full = joinPath(root, dir);
    try {
      return (await readdir(full, { withFileTypes: true })).map((d) => ({ name: d.name, dir: d.isDirectory() }));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`image folder '${full}'`, [full], 'pass a directory with one sub-folder of images per class');
      throw e;
    }
  };
}
