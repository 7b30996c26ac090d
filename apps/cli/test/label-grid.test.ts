import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { labelledGridPng, wrapLabel } from '../src/label-grid.js';

/** n grey 28×28 images whose brightness rises with their index. */
function images(n: number): Float32Array {
  const v = new Float32Array(n * 28 * 28);
  for (let i = 0; i < n; i++) v.fill(0.2 + (0.6 * i) / n, i * 784, (i + 1) * 784);
  return v;
}

describe('labelledGridPng', () => {
  it('widens cells for long class names, wraps them onto two lines, and keeps every label inside its own cell', () => {
    const labels = ['cat', 'Pembroke_Welsh_corgi', 'German short-haired pointer', 'a-really-very-extremely-long-class-name-indeed'];
    const png = PNG.sync.read(Buffer.from(labelledGridPng(images(4), [4, 28, 28, 1], labels, { columns: 4 })));
    writeFileSync(path.join(os.tmpdir(), 'kiln-label-grid.png'), PNG.sync.write(png));
    // Cells widen to 120 px (20 characters) for the long names; gaps of 5 px around them.
    expect(png.width).toBe(4 * (120 + 5) + 5);
    // Two text lines of 11 px under each 84-px image.
    expect(png.height).toBe(84 + 2 * 11 + 1 + 2 * 5);
    const white = (x: number, y: number) => png.data[4 * (y * png.width + x)] === 255 && png.data[4 * (y * png.width + x) + 1] === 255;
    // No text pixel in the gaps between cells: each label stays in its cell.
    for (let c = 0; c <= 4; c++) {
      for (let x = c * 125; x < c * 125 + 5; x++) for (let y = 0; y < png.height; y++) expect(white(x, y)).toBe(false);
    }
    // The wrapped names use the second line; the short one does not.
    const lineHas = (cell: number, line: number) => {
      for (let y = 5 + 84 + 1 + 11 * line; y < 5 + 84 + 1 + 11 * (line + 1); y++) for (let x = 5 + cell * 125; x < 5 + cell * 125 + 120; x++) if (white(x, y)) return true;
      return false;
    };
    expect([0, 1, 2, 3].map((c) => lineHas(c, 0))).toEqual([true, true, true, true]);
    expect([0, 1, 2, 3].map((c) => lineHas(c, 1))).toEqual([false, false, true, true]);
  });

  it('wraps at separators, breaks words only when it must, and marks a cut', () => {
    expect(wrapLabel('German short-haired pointer', 20, 2)).toEqual(['German short-haired', 'pointer']);
    expect(wrapLabel('Pembroke_Welsh_corgi', 20, 2)).toEqual(['Pembroke_Welsh_corgi']);
    expect(wrapLabel('Pembroke_Welsh_corgi', 12, 2)).toEqual(['Pembroke_', 'Welsh_corgi']);
    expect(wrapLabel('abcdefghij', 4, 2)).toEqual(['abcd', 'ef..']);
    expect(wrapLabel('T-shirt/top', 14, 2)).toEqual(['T-shirt/top']);
    expect(wrapLabel('', 10, 2)).toEqual(['']);
  });
});
