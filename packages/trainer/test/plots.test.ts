import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '@kiln/data';
import { BEST_COLOUR, CsvLogger, Raster, TRAIN_COLOUR, VAL_COLOUR, learningCurves, lineChart, type LineChart, type PixelRect } from '../src/index.js';

/** A run that overfits: validation loss is lowest at epoch index 6 (the 7th epoch), then rises. */
function overfittingRows(epochs = 12): Record<string, number>[] {
  return Array.from({ length: epochs }, (_, e) => ({
    epoch: e,
    train_loss: 2.3 * Math.exp(-e / 3) + 0.1,
    val_loss: 2.2 * Math.exp(-e / 3) + 0.25 + 0.05 * Math.max(0, e - 5) ** 1.5,
    train_acc: 1 - 0.9 * Math.exp(-e / 3),
    val_acc: 0.9 - 0.85 * Math.exp(-e / 3) - 0.01 * Math.max(0, e - 6),
  }));
}

const same = (a: readonly number[], b: readonly number[]) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];

/** Pixels of colour `c` inside rectangle `r`. */
function count(img: Raster, r: PixelRect, c: readonly number[]): number {
  let n = 0;
  for (let y = Math.max(0, r.y); y < Math.min(img.height, r.y + r.h); y++) for (let x = Math.max(0, r.x); x < Math.min(img.width, r.x + r.w); x++) if (same(img.get(x, y), c)) n++;
  return n;
}

/** Every pixel the series' segments pass through, sampled every half pixel in the chart's own coordinates. */
function segmentPixels(chart: LineChart, panel: number, points: [number, number][]): [number, number][] {
  const f = chart.frames[panel];
  const px = points.map(([x, y]) => [f.xPixel(x), f.yPixel(y)]);
  const out: [number, number][] = [];
  for (let i = 1; i < px.length; i++) {
    const n = Math.ceil(2 * Math.hypot(px[i][0] - px[i - 1][0], px[i][1] - px[i - 1][1]));
    for (let k = 0; k <= n; k++) out.push([px[i - 1][0] + ((px[i][0] - px[i - 1][0]) * k) / n, px[i - 1][1] + ((px[i][1] - px[i - 1][1]) * k) / n]);
  }
  return out;
}

describe('learning curves', () => {
  it('mark the best epoch of the monitored metric (min) in its colour, at that epoch’s column, in every panel', () => {
    const chart = learningCurves(overfittingRows());
    const img = chart.raster();
    expect(chart.frames).toHaveLength(2);
    for (const f of chart.frames) {
      // Epoch 7 on the 1-based axis is the best val_loss; epoch ticks are whole numbers.
      const x = Math.round(f.xPixel(7));
      const column = { x, y: f.plot.y + 1, w: 1, h: f.plot.h - 2 };
      expect(count(img, column, BEST_COLOUR)).toBeGreaterThan(f.plot.h / 3);
      // …and at no other epoch's column.
      for (const e of [5, 6, 8, 9]) expect(count(img, { ...column, x: Math.round(f.xPixel(e)) }, BEST_COLOUR)).toBe(0);
      expect(f.xTicks.every(Number.isInteger)).toBe(true);
      expect(f.xTicks.length).toBeGreaterThanOrEqual(4);
    }
  });

  it('mark the highest value when the monitored metric is maximised', () => {
    const rows = overfittingRows();
    const best = rows.reduce((b, r) => (r.val_acc > b.val_acc ? r : b));
    const chart = learningCurves(rows, { monitor: 'val_acc' });
    const img = chart.raster();
    const f = chart.frames[1];
    expect(count(img, { x: Math.round(f.xPixel(best.epoch + 1)), y: f.plot.y + 1, w: 1, h: f.plot.h - 2 }, BEST_COLOUR)).toBeGreaterThan(f.plot.h / 3);
    // The ring sits on the val_acc curve at the best epoch: ring colour around the point.
    const [cx, cy] = [Math.round(f.xPixel(best.epoch + 1)), Math.round(f.yPixel(best.val_acc))];
    expect(count(img, { x: cx - 7, y: cy - 7, w: 15, h: 15 }, BEST_COLOUR)).toBeGreaterThan(40);
  });

  it('keep the legend clear of every line: no segment passes through the legend box, and inside it the series colours appear only in the swatches', () => {
    for (const rows of [overfittingRows(), overfittingRows(3), overfittingRows(40)]) {
      const chart = learningCurves(rows);
      const img = chart.raster();
      chart.frames.forEach((f, panel) => {
        const key = panel === 0 ? 'loss' : 'acc';
        for (const s of ['train', 'val']) {
          const pts = rows.map((r) => [r.epoch + 1, r[`${s}_${key}`]] as [number, number]);
          for (const [x, y] of segmentPixels(chart, panel, pts)) {
            const inside = x >= f.legend.x - 1 && x <= f.legend.x + f.legend.w && y >= f.legend.y - 1 && y <= f.legend.y + f.legend.h;
            expect(inside).toBe(false);
          }
        }
        // Inside the axes, right of the swatches (where the names are written), no line colour at all.
        if (f.legendInside) {
          const text = { x: f.legend.x + 32, y: f.legend.y, w: f.legend.w - 32, h: f.legend.h };
          for (const c of [TRAIN_COLOUR, VAL_COLOUR]) expect(count(img, text, c)).toBe(0);
        }
        // The legend is also inside the image and clear of the axis labels below the frame when it sits inside.
        expect(f.legend.x + f.legend.w).toBeLessThanOrEqual(img.width);
        expect(f.legend.y + f.legend.h).toBeLessThanOrEqual(img.height);
      });
    }
  });

  it('move the legend below the axes when no corner is free', () => {
    // Lines that sweep through every corner and the middle of the axes.
    const zig = Array.from({ length: 61 }, (_, i) => [i, i % 2] as [number, number]);
    const flat = Array.from({ length: 61 }, (_, i) => [i, 0.5] as [number, number]);
    const chart = lineChart([{ title: 'zigzag', xLabel: 'step', series: [{ name: 'zig', colour: [0, 0, 255], points: zig }, { name: 'flat', colour: [255, 0, 0], points: flat }] }]);
    const f = chart.frames[0];
    expect(f.legendInside).toBe(false);
    expect(f.legend.y).toBeGreaterThan(f.plot.y + f.plot.h);
    expect(f.legend.y + f.legend.h).toBeLessThanOrEqual(chart.height);
  });

  it('decode as PNG files of the size laid out, and the CsvLogger writes the PNG beside the SVG', async () => {
    const chart = learningCurves(overfittingRows());
    const decoded = await decodeImage(chart.png());
    expect([decoded.width, decoded.height]).toEqual([chart.width, chart.height]);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-curves-'));
    const log = new CsvLogger({ dir });
    overfittingRows(5).forEach((r, i) => log.logMetrics(r, i));
    await log.finalize();
    const png = readFileSync(path.join(dir, 'learning-curves.png'));
    const img = await decodeImage(png);
    const expected = learningCurves(overfittingRows(5));
    expect([img.width, img.height]).toEqual([expected.width, expected.height]);
    expect(readFileSync(path.join(dir, 'learning-curves.svg'), 'utf8')).toContain('best epoch');
    writeFileSync(path.join(os.tmpdir(), 'kiln-learning-curves.png'), chart.png());
  });

  it('log axes tick at powers of ten and two', () => {
    const lr = lineChart([{ title: 't', xLabel: 'lr', xScale: 'log10', series: [{ name: 's', colour: [0, 0, 0], points: [[1e-6, 1], [1, 2]] }] }]);
    expect(lr.frames[0].xTicks.map((t) => Math.round(Math.log10(t)))).toEqual([-6, -5, -4, -3, -2, -1, 0]);
    const bs = lineChart([{ title: 't', xLabel: 'batch', xScale: 'log2', series: [{ name: 's', colour: [0, 0, 0], points: [[4, 1], [256, 2]] }] }]);
    expect(bs.frames[0].xTicks).toEqual([4, 8, 16, 32, 64, 128, 256]);
  });

  it('label ticks with as many decimals as their spacing needs: 0.25 apart reads 1.25, not 1.3', () => {
    const chart = lineChart([{ title: 'loss', xLabel: 'epoch', integerX: true, series: [{ name: 'train', colour: [0, 0, 0], points: [[0, 0.9], [1, 1.6], [2, 2.2]] }] }]);
    const { yTicks } = chart.frames[0];
    expect(yTicks[1] - yTicks[0]).toBeCloseTo(0.25, 12);
    const labels = [...chart.svg().matchAll(/>([0-9.]+)<\/text>/g)].map((m) => m[1]);
    for (const t of yTicks) expect(labels).toContain(t.toFixed(2));
    expect(labels).not.toContain('1.3');
    const half = lineChart([{ title: 'acc', xLabel: 'epoch', series: [{ name: 'a', colour: [0, 0, 0], points: [[0, 0.1], [4, 2.4]] }] }]);
    const halfLabels = [...half.svg().matchAll(/>([0-9.]+)<\/text>/g)].map((m) => m[1]);
    expect(halfLabels).toContain('1.5');
    expect(halfLabels).not.toContain('1.50');
  });
});
