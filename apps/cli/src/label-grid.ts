import { ConfigError } from '@kiln/core';
import { Raster, TEXT_HEIGHT, textWidth, type Rgb } from '@kiln/trainer';

export interface LabelledGridOptions {
  /** Images per row (default: ⌈√N⌉). */
  columns?: number;
  /** Images narrower than this are enlarged by a whole factor (nearest neighbour) so labels fit under them (default 64). */
  minCellWidth?: number;
  /** Cells widen up to this many pixels for a long label before it wraps (default 120: 20 characters). */
  maxCellWidth?: number;
  /** Lines a label may wrap onto before it is cut, ending in '..' (default 2). */
  maxLines?: number;
}

const PAD = 3;
const BACKGROUND: Rgb = [32, 32, 32];
const TEXT: Rgb = [255, 255, 255];

/**
 * Lays images [N, H, W, C] (C = 1 or 3, values in [0, 1], clipped) out as a grid with each image's
 * label written under it, centred, in Kiln's bitmap font, and encodes it as an RGB PNG. A cell
 * widens for a long label (up to `maxCellWidth`), then the label wraps at spaces, '_', '-' or '/'
 * onto up to `maxLines` lines; only what still does not fit is cut. Characters outside printable
 * ASCII show as '?'.
 */
export function labelledGridPng(values: Float32Array, shape: [number, number, number, number], labels: string[], options: LabelledGridOptions = {}): Uint8Array {
  const [n, h, w, c] = shape;
  if (c !== 1 && c !== 3) throw new ConfigError('labelledGridPng.shape', 'images [N, H, W, 1 or 3]', shape);
  if (labels.length !== n) throw new ConfigError('labelledGridPng.labels', `${n} labels, one per image`, labels.length);
  const cols = options.columns ?? Math.ceil(Math.sqrt(n));
  if (!(Number.isInteger(cols) && cols >= 1)) throw new ConfigError('labelledGridPng.columns', 'a positive integer', options.columns);
  const maxLines = options.maxLines ?? 2;
  if (!(Number.isInteger(maxLines) && maxLines >= 1)) throw new ConfigError('labelledGridPng.maxLines', 'a positive integer', options.maxLines);
  const scale = Math.max(1, Math.ceil((options.minCellWidth ?? 64) / w));
  const imageW = w * scale;
  const widest = Math.max(0, ...labels.map((l) => textWidth(l)));
  const cellW = Math.max(imageW, Math.min(widest, options.maxCellWidth ?? 120));
  const lines = labels.map((l) => wrapLabel(l, Math.floor(cellW / textWidth('x')), maxLines));
  const labelH = Math.max(1, ...lines.map((l) => l.length)) * TEXT_HEIGHT + 1;
  const cellH = h * scale + labelH;
  const rows = Math.max(1, Math.ceil(n / cols));
  const gap = cellW > imageW ? PAD + 2 : 2;
  const img = new Raster(cols * (cellW + gap) + gap, rows * (cellH + gap) + gap, BACKGROUND);
  for (let i = 0; i < n; i++) {
    const oy = gap + Math.floor(i / cols) * (cellH + gap);
    const ox = gap + (i % cols) * (cellW + gap);
    const ix = ox + Math.floor((cellW - imageW) / 2);
    for (let y = 0; y < h * scale; y++) {
      for (let x = 0; x < imageW; x++) {
        const src = ((i * h + Math.floor(y / scale)) * w + Math.floor(x / scale)) * c;
        const px = [0, 1, 2].map((k) => Math.round(255 * Math.min(1, Math.max(0, values[src + (c === 3 ? k : 0)])))) as unknown as Rgb;
        img.set(ix + x, oy + y, px);
      }
    }
    lines[i].forEach((line, k) => img.text(ox + Math.floor((cellW - textWidth(line)) / 2), oy + h * scale + 1 + k * TEXT_HEIGHT, line, TEXT));
  }
  return img.toPng();
}

/**
 * `text` broken into at most `maxLines` lines of at most `chars` characters, at spaces, '_', '-'
 * or '/' where it can (the separator stays at the end of its line, a space is dropped), mid-word
 * where it must; what does not fit ends the last line as '..'.
 */
export function wrapLabel(text: string, chars: number, maxLines: number): string[] {
  const words = text.match(/[^ _\-/]+[_\-/]?| +/g) ?? [''];
  const out: string[] = [];
  let line = '';
  const push = () => {
    out.push(line.trimEnd());
    line = '';
  };
  for (const word of words) {
    if (/^ +$/.test(word)) {
      if (line.length > 0 && line.length < chars) line += ' ';
      continue;
    }
    if (line.length + word.length <= chars) {
      line += word;
      continue;
    }
    if (line.trim().length > 0) push();
    let rest = word;
    while (rest.length > chars) {
      line = rest.slice(0, chars);
      push();
      rest = rest.slice(chars);
    }
    line = rest;
  }
  if (line.trim().length > 0 || out.length === 0) push();
  if (out.length <= maxLines) return out;
  const kept = out.slice(0, maxLines);
  const last = kept[maxLines - 1];
  kept[maxLines - 1] = `${last.slice(0, Math.max(0, chars - 2))}..`;
  return kept;
}
