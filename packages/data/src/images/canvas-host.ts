/**
 * The browser image host: the browser's own decoders through `createImageBitmap` (any format the
 * browser reads, EXIF orientation applied, colour managed to sRGB) and an `OffscreenCanvas` for
 * shrinking and flattening. Works in windows and in Web Workers; no Node API.
 */
import { DataFormatError, NotFoundError } from '@kiln/core';
import { compactPixels, finishResize, resizePlan, shrunkSize } from './geometry.js';
import { headerSize } from './header-size.js';
import { DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, type DecodeSpec, type ImageHost, type ImageLimits } from './image-host.js';

/** Bytes read to find the declared size (see header-size.ts). */
const HEADER_BYTES = 256 * 1024;

export class CanvasHost implements ImageHost {
  readonly maxPixels: number;
  readonly maxFileBytes: number;

  /** `files` maps the names the folder uses to their contents (Files from a directory picker, fetched Blobs). */
  constructor(
    private readonly files: ReadonlyMap<string, Blob>,
    limits: ImageLimits = {},
  ) {
    this.maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
    this.maxFileBytes = limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  }

  /** Checks size limits, then decodes: a browser cannot read a header without decoding, so the probe decodes once. */
  async probe(file: string): Promise<{ height: number; width: number }> {
    const bitmap = await this.bitmap(file);
    const size = { height: bitmap.height, width: bitmap.width };
    bitmap.close();
    return size;
  }

  async decode(file: string, spec: DecodeSpec): Promise<Uint8Array> {
    const bitmap = await this.bitmap(file);
    try {
      const plan = resizePlan(bitmap.height, bitmap.width, spec.size, spec.resize);
      const [h, w] = shrunkSize(bitmap.height, bitmap.width, plan);
      const canvas = new OffscreenCanvas(w, h);
      const ctx = canvas.getContext('2d', { willReadFrequently: true }) as OffscreenCanvasRenderingContext2D | null;
      if (!ctx) throw new DataFormatError(file, 'no 2D canvas context to decode into');
      // Drawn over black: transparent pixels come out flattened on black, as sharp's flatten does in Node.
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, w, h);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(bitmap, 0, 0, w, h);
      const rgba = ctx.getImageData(0, 0, w, h).data;
      const rgb = new Uint8Array(w * h * 3);
      for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
        rgb[q] = rgba[p];
        rgb[q + 1] = rgba[p + 1];
        rgb[q + 2] = rgba[p + 2];
      }
      return compactPixels(finishResize(rgb, [h, w], plan, spec.size));
    } finally {
      bitmap.close();
    }
  }

  /** The decoded image, after checking the file size and the declared pixel count. */
  private async bitmap(file: string): Promise<ImageBitmap> {
    const blob = this.files.get(file);
    if (!blob) throw new NotFoundError(`image file '${file}'`, [file]);
    if (blob.size > this.maxFileBytes) throw new DataFormatError(file, 'file larger than the size limit', { expected: `at most ${this.maxFileBytes} bytes (option maxFileBytes)`, found: `${blob.size} bytes` });
    if (blob.size === 0) throw new DataFormatError(file, 'empty file', { expected: 'an image', found: '0 bytes' });
    const declared = headerSize(new Uint8Array(await blob.slice(0, HEADER_BYTES).arrayBuffer()));
    if (declared && declared.width * declared.height > this.maxPixels) {
      throw new DataFormatError(file, 'image declares more pixels than the limit', { expected: `at most ${this.maxPixels} pixels (option maxPixels)`, found: `${declared.width}×${declared.height} = ${declared.width * declared.height}`, hint: 'a small file declaring a huge size is a decompression bomb; raise maxPixels only for files you trust' });
    }
    try {
      return await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'default', colorSpaceConversion: 'default' });
    } catch (e) {
      throw new DataFormatError(file, `unreadable image: ${e instanceof Error ? e.message : String(e)}`, { offset: 0 });
    }
  }
}
