import { ConfigError } from '@kiln/core';
import { Raster, TEXT_HEIGHT, textWidth, type Rgb } from '../plot/raster.js';

/** Options of {@link confusionMatrixPng}. */
export interface ConfusionMatrixPngOptions {
  /** Pixel size of one font pixel (default 1: 6×11-pixel characters). */
  scale?: number;
  /** Class names longer than this are cut, ending in '..' (default 16). */
  maxNameLength?: number;
}

const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [20, 20, 20];
const GRID: Rgb = [200, 200, 200];
/** The dark end of the cell colour scale (matplotlib's "Blues" ends here). */
const DARK: Rgb = [8, 48, 107];

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
  const scale = options.scale ?? 1;
  const names = classNames.map((n) => shorten(n, options.maxNameLength ?? 16));
  const charH = TEXT_HEIGHT * scale;
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
  img.text(left + (k * cell - textWidth(colTitle, scale)) / 2, pad, colTitle, INK, scale);
  img.text(pad, top + (k * cell + textWidth(rowTitle, scale)) / 2, rowTitle, INK, scale, true);
  names.forEach((name, i) => {
    // Row names right-aligned against the grid; column names upright, their ends against the grid.
    img.text(left - pad - textWidth(name, scale), top + i * cell + (cell - charH) / 2, name, INK, scale);
    img.text(left + i * cell + (cell - charH) / 2, top - pad, name, INK, scale, true);
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
      img.text(x + (cell - textWidth(s, scale)) / 2, y + (cell - charH) / 2, s, t > 0.5 ? WHITE : INK, scale);
    });
  });
  // Grid lines over the cells.
  for (let i = 0; i <= k; i++) {
    img.rect(left + i * cell, top, 1, k * cell + 1, GRID);
    img.rect(left, top + i * cell, k * cell + 1, 1, GRID);
  }
  return img.toPng();
}
