import { ConfigError } from '@kiln/core';
import { encodePng } from '@kiln/data';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph, textWidth } from './bitmap-font.js';

/** Options of {@link confusionMatrixPng}. */
export interface ConfusionMatrixPngOptions {
  /** Pixel size of one font pixel (default 2: 10×14-pixel characters). */
  scale?: number;
  /** Class names longer than this are cut, ending in '..' (default 16). */
  maxNameLength?: number;
}

type Rgb = readonly [number, number, number];

const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [20, 20, 20];
const GRID: Rgb = [200, 200, 200];
/** The dark end of the cell colour scale (matplotlib's "Blues" ends here). */
const DARK: Rgb = [8, 48, 107];

/** An RGB raster with the few drawing operations the chart needs. */
class Raster {
  readonly pixels: Uint8Array;

  constructor(readonly width: number, readonly height: number) {
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) this.pixels.set(c, 3 * (yy * this.width + xx));
    }
  }

  /** Text with its top-left corner at (x, y); `vertical` turns it to read from the bottom up, its bottom-left at (x, y). */
  text(x: number, y: number, s: string, scale: number, c: Rgb, vertical = false): void {
    [...s].forEach((ch, k) => {
      const offset = k * (GLYPH_WIDTH + 1) * scale;
      glyph(ch).forEach((row, gy) =>
        row.forEach((lit, gx) => {
          if (!lit) return;
          if (vertical) this.rect(x + gy * scale, y - offset - (gx + 1) * scale, scale, scale, c);
          else this.rect(x + offset + gx * scale, y + gy * scale, scale, scale, c);
        }),
      );
    });
  }
}

function shorten(name: string, max: number): string {
  return name.length <= max ? name : `${name.slice(0, Math.max(1, max - 2))}..`;
}

/**
 * Draws a confusion matrix (row = target class, column = predicted class) as a PNG heatmap:
 * class names along both axes (column names turned upright), the count in every cell, and each
 * cell shaded by its share of its row — the fraction of that class predicted as the column's — so
 * that rare classes read as clearly as common ones.
 */
export function confusionMatrixPng(matrix: readonly (readonly number[])[], classNames: readonly string[], options: ConfusionMatrixPngOptions = {}): Uint8Array {
  const k = matrix.length;
  if (k === 0 || matrix.some((row) => row.length !== k)) throw new ConfigError('confusionMatrixPng.matrix', 'a square K×K matrix of counts', `${k} rows of lengths ${matrix.map((r) => r.length).join(', ')}`);
  if (classNames.length !== k) throw new ConfigError('confusionMatrixPng.classNames', `${k} names, one per row of the matrix`, `${classNames.length} names`);
  const scale = options.scale ?? 2;
  const names = classNames.map((n) => shorten(n, options.maxNameLength ?? 16));
  const charH = GLYPH_HEIGHT * scale;
  const pad = 4 * scale;
  const counts = matrix.map((row) => row.map((v) => String(Math.round(v))));
  const widest = Math.max(...counts.flat().map((s) => textWidth(s, scale)));
  const cell = Math.max(widest + 2 * pad, charH + 3 * pad);
  const nameW = Math.max(...names.map((n) => textWidth(n, scale)));
  const rowTitle = 'target';
  const colTitle = 'predicted';
  const left = pad + charH + pad + nameW + pad;
  const top = pad + charH + pad + nameW + pad;
  const width = left + k * cell + pad;
  const height = top + k * cell + pad;
  const img = new Raster(width, height);

  // Axis titles, centred on the grid.
  img.text(left + (k * cell - textWidth(colTitle, scale)) / 2, pad, colTitle, scale, INK);
  img.text(pad, top + (k * cell + textWidth(rowTitle, scale)) / 2, rowTitle, scale, INK, true);
  names.forEach((name, i) => {
    // Row names right-aligned against the grid; column names upright, their ends against the grid.
    img.text(left - pad - textWidth(name, scale), top + i * cell + (cell - charH) / 2, name, scale, INK);
    img.text(left + i * cell + (cell - charH) / 2, top - pad, name, scale, INK, true);
  });
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((v, j) => {
      const t = total === 0 ? 0 : v / total;
      const fill = WHITE.map((w, c) => Math.round(w + (DARK[c] - w) * t)) as unknown as Rgb;
      const x = left + j * cell;
      const y = top + i * cell;
      img.rect(x, y, cell, cell, fill);
      const s = counts[i][j];
      img.text(x + (cell - textWidth(s, scale)) / 2, y + (cell - charH) / 2, s, scale, t > 0.5 ? WHITE : INK);
    });
  });
  // Grid lines over the cells.
  for (let i = 0; i <= k; i++) {
    img.rect(left + i * cell, top, 1, k * cell + 1, GRID);
    img.rect(left, top + i * cell, k * cell + 1, 1, GRID);
  }
  return encodePng(img.pixels, width, height, 3);
}
