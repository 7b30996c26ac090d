import { deflateSync, inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kiln/core';
import { encodePng, storedZlib, writePng } from '@kiln/data';

/** Pixels that differ everywhere, so a shifted row or swapped channel shows. */
function pattern(w: number, h: number, c: number): Uint8Array {
  return Uint8Array.from({ length: w * h * c }, (_, i) => (i * 37 + (i >> 5)) & 0xff);
}

/**
 * Byte-for-byte equality, reported as the first differing offset: vitest's deep equality walks a
 * 200,000-element typed array one element at a time, which took over 5 s on a loaded CI machine.
 */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  const at = a.equals(b) ? -1 : Array.from({ length: Math.max(a.length, b.length) }, (_, i) => i).find((i) => a[i] !== b[i]);
  expect({ length: a.length, firstDifference: at }).toEqual({ length: b.length, firstDifference: -1 });
}

/** Decodes with libvips (an independent reader) to raw pixels with the file's own channel count. */
async function decode(png: Uint8Array) {
  const meta = await sharp(png).metadata();
  // libvips widens grey to sRGB on output; its first band is the grey value.
  const img = meta.channels === 1 ? sharp(png).extractChannel(0) : sharp(png);
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data), width: info.width, height: info.height, channels: meta.channels };
}

describe('the PNG writer (Node and browser builds)', () => {
  for (const channels of [1, 3, 4] as const) {
    it(`round-trips ${channels}-channel pixels through libvips, stored and compressed`, async () => {
      const px = pattern(13, 7, channels);
      for (const png of [writePng(px, 13, 7, channels), encodePng(px, 13, 7, channels)]) {
        expect(await decode(png)).toEqual({ pixels: px, width: 13, height: 7, channels });
      }
    });
  }

  it('stored zlib streams inflate to their input, across the 65,535-byte block boundary', () => {
    for (const n of [0, 1, 65534, 65535, 65536, 200_000]) {
      const raw = pattern(n, 1, 1);
      const z = storedZlib(raw);
      expectSameBytes(inflateSync(z), raw);
      // Adler-32 checked by zlib above; the header must also be one zlib accepts on its own.
      expect(((z[0] << 8) | z[1]) % 31).toBe(0);
    }
  });

  it('an image larger than one stored block decodes (multi-block IDAT)', async () => {
    const px = pattern(300, 250, 3); // 225,250 bytes of scanlines: four blocks
    expectSameBytes((await decode(writePng(px, 300, 250, 3))).pixels, px);
  });

  it('takes any zlib compressor and compresses in Node', () => {
    const px = new Uint8Array(64 * 64 * 3).fill(200);
    const stored = writePng(px, 64, 64, 3);
    const packed = writePng(px, 64, 64, 3, (raw) => new Uint8Array(deflateSync(raw)));
    expect(packed.length).toBeLessThan(stored.length / 10);
    expect(encodePng(px, 64, 64, 3)).toEqual(packed);
  });

  it('names the argument that is wrong', () => {
    expect(() => writePng(new Uint8Array(5), 2, 2, 1)).toThrow(ConfigError);
    expect(() => writePng(new Uint8Array(5), 2, 2, 1)).toThrow(/encodePng\.pixels/);
    expect(() => writePng(new Uint8Array(0), 0, 2, 1)).toThrow(/encodePng\.size/);
    expect(() => writePng(new Uint8Array(8), 2, 2, 2 as 1)).toThrow(/encodePng\.channels/);
  });
});
