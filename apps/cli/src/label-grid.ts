import { ConfigError } from '@kiln/core';
import { encodePng } from '@kiln/data';
import { GLYPHS, GLYPH_HEIGHT, GLYPH_WIDTH } from './label-font.js';

export interface LabelledGridOptions {
  /** Images per row (default: ⌈√N⌉). */
  columns?: number;
  /** Images narrower than this are enlarged by a whole factor (nearest neighbour) so labels fit under them (default 64). */
  minCellWidth?: number;
}

const PAD = 2;
const BACKGROUND = 32;
const TEXT = 255;

/**
 * Lays images [N, H, W, C] (C = 1 or 3, values in [0, 1], clipped) out as a grid with each image's
 * label written under it, and encodes it as an RGB PNG. Labels are drawn in a 6×11 bitmap font;
 * characters outside printable ASCII show as '?', and a label wider than its cell ends in '.'.
 */
export function labelledGridPng(values: Float32Array, shape: [number, number, number, number], labels: string[], options: LabelledGridOptions = {}): Uint8Array {
  const [n, h, w, c] = shape;
  if (c !== 1 && c !== 3) throw new ConfigError('labelledGridPng.shape', 'images [N, H, W, 1 or 3]', shape);
  if (labels.length !== n) throw new ConfigError('labelledGridPng.labels', `${n} labels, one per image`, labels.length);
  const cols = options.columns ?? Math.ceil(Math.sqrt(n));
  if (!(Number.isInteger(cols) && cols >= 1)) throw new ConfigError('labelledGridPng.columns', 'a positive integer', options.columns);
  const scale = Math.max(1, Math.ceil((options.minCellWidth ?? 64) / w));
  const cellW = w * scale;
  const cellH = h * scale + GLYPH_HEIGHT + 1;
  const rows = Math.max(1, Math.ceil(n / cols));
  const gw = cols * (cellW + PAD) + PAD;
  const gh = rows * (cellH + PAD) + PAD;
  const out = new Uint8Array(gw * gh * 3).fill(BACKGROUND);
  for (let i = 0; i < n; i++) {
    const oy = PAD + Math.floor(i / cols) * (cellH + PAD);
    const ox = PAD + (i % cols) * (cellW + PAD);
    for (let y = 0; y < h * scale; y++) {
      for (let x = 0; x < cellW; x++) {
        const src = ((i * h + Math.floor(y / scale)) * w + Math.floor(x / scale)) * c;
        const dst = ((oy + y) * gw + ox + x) * 3;
        for (let k = 0; k < 3; k++) out[dst + k] = Math.round(255 * Math.min(1, Math.max(0, values[src + (c === 3 ? k : 0)])));
      }
    }
    drawText(out, gw, ox, oy + h * scale + 1, fit(labels[i], Math.floor(cellW / GLYPH_WIDTH)));
  }
  return encodePng(out, gw, gh, 3);
}

/** `text` cut to `chars` characters, the last one a '.' when it was cut. */
function fit(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, Math.max(0, chars - 1))}.`;
}

function drawText(rgb: Uint8Array, width: number, x0: number, y0: number, text: string): void {
  [...text].forEach((ch, i) => {
    const code = ch.codePointAt(0) as number;
    const glyph = GLYPHS[code >= 32 && code <= 126 ? code - 32 : '?'.charCodeAt(0) - 32];
    for (let y = 0; y < GLYPH_HEIGHT; y++) {
      const bits = parseInt(glyph.slice(2 * y, 2 * y + 2), 16);
      for (let x = 0; x < GLYPH_WIDTH; x++) {
        if (bits & (1 << (GLYPH_WIDTH - 1 - x))) rgb.fill(TEXT, ((y0 + y) * width + x0 + i * GLYPH_WIDTH + x) * 3, ((y0 + y) * width + x0 + i * GLYPH_WIDTH + x) * 3 + 3);
      }
    }
  });
}
