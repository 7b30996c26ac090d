import { ConfigError } from '@kiln/core';
import { encodePng } from '@kiln/data';
import { GLYPHS, GLYPH_HEIGHT, GLYPH_WIDTH } from './font-glyphs.js';

/** An sRGB colour, 0–255 per channel. */
export type Rgb = readonly [number, number, number];

/** Height in pixels of one line of text at scale 1 (the font's cell, descenders included). */
export const TEXT_HEIGHT = GLYPH_HEIGHT;

/**
 * Width in pixels of `text` in Kiln's bitmap font (6×11 cells, from Pillow's built-in font) at
 * `scale`; every character, including those drawn as '?', takes one cell.
 */
export function textWidth(text: string, scale = 1): number {
  return [...text].length * GLYPH_WIDTH * scale;
}

/** The glyph rows of one character: bit 5 is the leftmost of six pixels. Outside printable ASCII, '?'. */
function glyphRows(ch: string): number[] {
  const code = ch.codePointAt(0) ?? 63;
  const hex = GLYPHS[code >= 32 && code <= 126 ? code - 32 : 63 - 32];
  return Array.from({ length: GLYPH_HEIGHT }, (_, y) => parseInt(hex.slice(2 * y, 2 * y + 2), 16));
}

/** Options of {@link Raster.line}. */
export interface LineStyle {
  /** Pen width in pixels (default 1). */
  width?: number;
  /** On/off run lengths in pixels along the line, e.g. [6, 4] (default: solid). */
  dash?: readonly number[];
}

/**
 * An RGB image with the drawing operations Kiln's charts need — filled rectangles, thick and
 * dashed polylines, discs and bitmap-font text — encoded to PNG with `@kiln/data`'s encoder. No
 * anti-aliasing: every pixel is a colour the caller chose, which keeps plots crisp and lets tests
 * find a series or a marker by its exact colour.
 */
export class Raster {
  /** Pixels, row-major, three bytes each. */
  readonly pixels: Uint8Array;

  constructor(
    /** Width in pixels. */
    readonly width: number,
    /** Height in pixels. */
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new ConfigError('Raster', 'a positive integer width and height', `${width}×${height}`);
    this.pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.pixels.set(background, 3 * i);
  }

  /** Sets one pixel; coordinates are rounded, and pixels outside the image are ignored. */
  set(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    this.pixels.set(c, 3 * (yi * this.width + xi));
  }

  /** The colour at (x, y). */
  get(x: number, y: number): Rgb {
    const i = 3 * (y * this.width + x);
    return [this.pixels[i], this.pixels[i + 1], this.pixels[i + 2]];
  }

  /** Fills the rectangle with top-left corner (x, y), clipped to the image. */
  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.pixels.set(c, 3 * (yy * this.width + xx));
  }

  /** The one-pixel outline of a rectangle. */
  strokeRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.rect(x, y, w, 1, c);
    this.rect(x, y + h - 1, w, 1, c);
    this.rect(x, y, 1, h, c);
    this.rect(x + w - 1, y, 1, h, c);
  }

  /** A filled disc of radius `r` centred on (cx, cy). */
  disc(cx: number, cy: number, r: number, c: Rgb): void {
    for (let dy = -Math.ceil(r); dy <= Math.ceil(r); dy++) {
      for (let dx = -Math.ceil(r); dx <= Math.ceil(r); dx++) if (dx * dx + dy * dy <= r * r + 0.25) this.set(cx + dx, cy + dy, c);
    }
  }

  /**
   * A polyline through `points`, drawn by stamping a square pen at unit steps along each segment;
   * the dash pattern runs on across vertices, so short segments still show it.
   */
  line(points: readonly (readonly [number, number])[], c: Rgb, style: LineStyle = {}): void {
    const w = style.width ?? 1;
    const dash = style.dash ?? [];
    const period = dash.reduce((a, b) => a + b, 0);
    let travelled = 0;
    const lo = -Math.floor((w - 1) / 2);
    for (let i = 1; i < points.length; i++) {
      const [x0, y0] = points[i - 1];
      const [x1, y1] = points[i];
      const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
      const len = Math.hypot(x1 - x0, y1 - y0);
      for (let s = i === 1 ? 0 : 1; s <= n; s++) {
        const t = s / n;
        if (period > 0 && !dashOn(dash, period, travelled + t * len)) continue;
        const x = Math.round(x0 + (x1 - x0) * t);
        const y = Math.round(y0 + (y1 - y0) * t);
        for (let dy = 0; dy < w; dy++) for (let dx = 0; dx < w; dx++) this.set(x + lo + dx, y + lo + dy, c);
      }
      travelled += len;
    }
  }

  /**
   * Text with its top-left corner at (x, y). `vertical` turns it a quarter to read from the bottom
   * up (a y-axis title), its bottom-left corner at (x, y).
   */
  text(x: number, y: number, s: string, c: Rgb, scale = 1, vertical = false): void {
    const x0 = Math.round(x);
    const y0 = Math.round(y);
    [...s].forEach((ch, k) => {
      const offset = k * GLYPH_WIDTH * scale;
      glyphRows(ch).forEach((bits, gy) => {
        for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
          if (!(bits & (1 << (GLYPH_WIDTH - 1 - gx)))) continue;
          if (vertical) this.rect(x0 + gy * scale, y0 - offset - (gx + 1) * scale, scale, scale, c);
          else this.rect(x0 + offset + gx * scale, y0 + gy * scale, scale, scale, c);
        }
      });
    });
  }

  /** The image as an RGB PNG file. */
  toPng(): Uint8Array {
    return encodePng(this.pixels, this.width, this.height, 3);
  }
}

/** Whether distance `d` along a dashed line falls in an "on" run of `dash`. */
function dashOn(dash: readonly number[], period: number, d: number): boolean {
  let r = d % period;
  for (let i = 0; i < dash.length; i++) {
    if (r < dash[i]) return i % 2 === 0;
    r -= dash[i];
  }
  return false;
}
