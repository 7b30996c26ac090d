import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { headerSize } from '../src/images/header-size.js';

/** A width × height image with some texture, so lossy encoders keep it honest. */
const source = (width: number, height: number) => sharp(Buffer.from(Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 31) % 256)), { raw: { width, height, channels: 3 } });

describe('headerSize (the browser host’s decompression-bomb guard)', () => {
  it('reads the declared size of PNG, GIF, JPEG (baseline and progressive) and WebP (lossy, lossless, extended) as sharp does', async () => {
    const cases: [string, Buffer][] = [
      ['png', await source(37, 21).png().toBuffer()],
      ['palette png', await source(37, 21).png({ palette: true }).toBuffer()],
      ['gif', await source(37, 21).gif().toBuffer()],
      ['jpeg', await source(37, 21).jpeg().toBuffer()],
      ['progressive jpeg with EXIF', await source(37, 21).jpeg({ progressive: true }).withMetadata({ orientation: 6 }).toBuffer()],
      ['lossy webp', await source(37, 21).webp({ quality: 50 }).toBuffer()],
      ['lossless webp', await source(37, 21).webp({ lossless: true }).toBuffer()],
      ['webp with alpha (VP8X)', await source(37, 21).ensureAlpha(0.5).webp({ quality: 50 }).withMetadata({ orientation: 3 }).toBuffer()],
    ];
    for (const [name, bytes] of cases) {
      const meta = await sharp(bytes).metadata();
      expect([meta.width, meta.height], name).toEqual([37, 21]);
      expect(headerSize(bytes), name).toEqual({ width: 37, height: 21 });
    }
  });

  it('is undefined for other bytes and cut-short headers', async () => {
    expect(headerSize(new TextEncoder().encode('not an image at all, just text'))).toBeUndefined();
    expect(headerSize(new Uint8Array(0))).toBeUndefined();
    const jpeg = await source(8, 8).jpeg().toBuffer();
    expect(headerSize(jpeg.subarray(0, 20))).toBeUndefined();
  });
});
