import { ConfigError } from '@kiln/core';
import { Raster, TEXT_HEIGHT, textWidth, type LineStyle, type Rgb } from './raster.js';

/** One line of a chart panel. */
export interface ChartSeries {
  /** Name shown in the legend. */
  name: string;
  /** (x, y) points in data units, in drawing order; non-finite points are skipped. */
  points: readonly (readonly [number, number])[];
  /** Line colour. */
  colour: Rgb;
  /** Draw dashed (default solid). */
  dashed?: boolean;
  /** Draw a dot at every point (default false). */
  markers?: boolean;
  /** Pen width in pixels (default 2). */
  width?: number;
}

/** A value the reader should find: a vertical line at `x`, a ring at `point`, a legend entry. */
export interface ChartMark {
  /** Where the vertical line stands, in data units. */
  x: number;
  /** A point to ring (e.g. the best epoch's value on the monitored series). */
  point?: readonly [number, number];
  /** Legend text, e.g. `best epoch 7: val_loss 0.312`. */
  label: string;
  /** Colour of the line, the ring and the legend entry. */
  colour: Rgb;
}

/** One panel: axes with ticks, a title, lines and marks. */
export interface ChartPanel {
  /** Title above the panel. */
  title: string;
  /** Title of the x axis. */
  xLabel: string;
  /** Title of the y axis (written upright along it). */
  yLabel?: string;
  /** `linear` (default), `log10` (ticks at powers of ten) or `log2` (ticks at powers of two: batch sizes). */
  xScale?: 'linear' | 'log10' | 'log2';
  /** Ticks on the x axis only at whole numbers (epochs, steps). */
  integerX?: boolean;
  /** The lines. */
  series: readonly ChartSeries[];
  /** Values to point out. */
  marks?: readonly ChartMark[];
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Width of one panel in pixels (default 480). */
  panelWidth?: number;
  /** Height of one panel in pixels (default 320). */
  panelHeight?: number;
}

/** A rectangle in image pixels: top-left corner, width, height. */
export interface PixelRect {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width. */
  w: number;
  /** Height. */
  h: number;
}

/** Where one panel's parts landed in the image. */
export interface PanelFrame {
  /** The axes' frame. */
  plot: PixelRect;
  /** The legend box (inside the frame where a corner was free of data, else below the axes). */
  legend: PixelRect;
  /** True when the legend sits inside the frame. */
  legendInside: boolean;
  /** Image column of data value `x`. */
  xPixel(x: number): number;
  /** Image row of data value `y`. */
  yPixel(y: number): number;
  /** Values of the x ticks drawn. */
  xTicks: number[];
  /** Values of the y ticks drawn. */
  yTicks: number[];
}

/** A laid-out chart: its size, each panel's geometry, and renderers to PNG and SVG. */
export interface LineChart {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** One per panel, left to right. */
  frames: PanelFrame[];
  /** Draws the chart into a new raster. */
  raster(): Raster;
  /** The chart as a PNG file. */
  png(): Uint8Array;
  /** The same drawing as a self-contained SVG document (monospace text in place of the bitmap font). */
  svg(): string;
}

/** What a chart draws on: the raster, or an SVG writer with the same calls. */
interface Surface {
  rect(x: number, y: number, w: number, h: number, c: Rgb): void;
  strokeRect(x: number, y: number, w: number, h: number, c: Rgb): void;
  disc(cx: number, cy: number, r: number, c: Rgb): void;
  line(points: readonly (readonly [number, number])[], c: Rgb, style?: LineStyle & { title?: string }): void;
  text(x: number, y: number, s: string, c: Rgb, scale?: number, vertical?: boolean): void;
}

const INK: Rgb = [30, 30, 30];
const AXIS: Rgb = [120, 120, 120];
const GRID: Rgb = [232, 232, 232];
const LEGEND_EDGE: Rgb = [190, 190, 190];
const WHITE: Rgb = [255, 255, 255];
const PAD = 6;
const TICK = 4;
/** Gap kept between the data area and the frame, so end points and rings are not cut by it. */
const INSET = 8;
const SWATCH = 22;
const ROW = TEXT_HEIGHT + 4;

type Pt = readonly [number, number];

/**
 * Lays out line charts — one or more panels side by side, each with a title, axis titles, ticks
 * at round values (whole numbers for epochs; powers of ten or two on log axes), a legend, and
 * marks such as the best epoch — and renders them to PNG (Kiln's bitmap font) or SVG from the
 * same layout. The legend goes in the first corner of the axes that no line, dot or mark passes
 * through (with a few pixels to spare); when every corner is taken it goes below the axes, so it
 * never hides data.
 */
export function lineChart(panels: readonly ChartPanel[], options: LineChartOptions = {}): LineChart {
  if (panels.length === 0) throw new ConfigError('lineChart.panels', 'at least one panel', 0);
  const pw = options.panelWidth ?? 480;
  const ph = options.panelHeight ?? 320;
  if (!(Number.isInteger(pw) && pw >= 160 && Number.isInteger(ph) && ph >= 120)) throw new ConfigError('lineChart.panelWidth/panelHeight', 'integers of at least 160 × 120', `${pw} × ${ph}`);
  const layouts = panels.map((p, i) => layoutPanel(p, i * pw, pw, ph));
  const height = Math.max(...layouts.map((l) => l.height));
  const width = pw * panels.length;
  const draw = (s: Surface) => layouts.forEach((l, i) => drawPanel(s, panels[i], l));
  const raster = () => {
    const r = new Raster(width, height);
    draw(r);
    return r;
  };
  return {
    width,
    height,
    frames: layouts.map((l) => l.frame),
    raster,
    png: () => raster().toPng(),
    svg() {
      const s = new SvgSurface();
      draw(s);
      return s.document(width, height);
    },
  };
}

interface PanelLayout {
  frame: PanelFrame;
  /** The panel's lines and marks, less points the axes cannot show (non-finite; x <= 0 on a log axis). */
  series: ChartSeries[];
  marks: ChartMark[];
  height: number;
  ox: number;
  width: number;
  xTickLabels: string[];
  yTickLabels: string[];
  legendEntries: LegendEntry[];
  /** Legend rows when the legend sits below the axes (entries side by side, wrapped). */
  legendRows: { entry: LegendEntry; x: number; y: number }[];
}

interface LegendEntry {
  label: string;
  colour: Rgb;
  kind: 'line' | 'dashed' | 'mark';
}

function layoutPanel(panel: ChartPanel, ox: number, width: number, baseHeight: number): PanelLayout {
  const scale = panel.xScale ?? 'linear';
  const series = panel.series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (scale === 'linear' || x > 0)) }));
  const marks = (panel.marks ?? []).filter((m) => Number.isFinite(m.x) && (scale === 'linear' || m.x > 0));
  const xs = [...series.flatMap((s) => s.points.map((p) => p[0])), ...marks.map((m) => m.x)];
  const ys = [...series.flatMap((s) => s.points.map((p) => p[1])), ...marks.flatMap((m) => (m.point ? [m.point[1]] : []))];
  const tx = scale === 'linear' ? (v: number) => v : scale === 'log10' ? Math.log10 : Math.log2;
  const [x0, x1] = extent(xs.map(tx), panel.integerX ? 1 : 0.5);
  // 5% of the range above and below, so no line runs along the frame.
  const [ya, yb] = extent(ys, 0.5);
  const [y0, y1] = [ya - (yb - ya) * 0.05, yb + (yb - ya) * 0.05];
  const yTicks = linearTicks(y0, y1, 6, false);
  const yTickLabels = formatTicks(yTicks);
  const entries: LegendEntry[] = [
    ...series.map((s) => ({ label: s.name, colour: s.colour, kind: s.dashed ? ('dashed' as const) : ('line' as const) })),
    ...marks.map((m) => ({ label: m.label, colour: m.colour, kind: 'mark' as const })),
  ];
  const legendW = PAD + SWATCH + PAD + Math.max(0, ...entries.map((e) => textWidth(e.label))) + PAD;
  const legendH = PAD + entries.length * ROW - 4 + PAD;

  const left = PAD + (panel.yLabel ? TEXT_HEIGHT + PAD : 0) + Math.max(...yTickLabels.map((l) => textWidth(l))) + TICK + 3;
  const top = PAD + TEXT_HEIGHT + PAD;
  const right = PAD + 14;
  const axesBottom = TICK + 3 + TEXT_HEIGHT + PAD + TEXT_HEIGHT + PAD;
  const plotW = width - left - right;

  // Below-the-axes legend rows, in case no corner is free.
  const rows: { entry: LegendEntry; x: number; y: number }[] = [];
  let cx = 0;
  let cy = 0;
  for (const e of entries) {
    const w = SWATCH + PAD + textWidth(e.label) + 2 * PAD;
    if (cx > 0 && cx + w > plotW) {
      cx = 0;
      cy += ROW;
    }
    rows.push({ entry: e, x: cx, y: cy });
    cx += w;
  }
  const belowH = entries.length === 0 ? 0 : cy + ROW;

  const build = (below: boolean): PanelLayout => {
    const height = baseHeight + (below ? belowH : 0);
    const plot: PixelRect = { x: ox + left, y: top, w: plotW, h: height - top - axesBottom - (below ? belowH : 0) };
    const xPixel = (v: number) => plot.x + INSET + ((tx(v) - x0) / (x1 - x0)) * (plot.w - 2 * INSET);
    const yPixel = (v: number) => plot.y + INSET + (1 - (v - y0) / (y1 - y0)) * (plot.h - 2 * INSET);
    const allTicks: number[] = [];
    if (scale === 'linear') allTicks.push(...linearTicks(x0, x1, Math.max(2, Math.floor(plot.w / 40)), panel.integerX ?? false));
    else for (let e = Math.ceil(x0 - 1e-9); e <= Math.floor(x1 + 1e-9); e++) allTicks.push(Math.pow(scale === 'log10' ? 10 : 2, e));
    // Every k-th tick, the smallest k whose labels stand apart.
    const labelsOf = (t: number[]) => (scale === 'linear' ? formatTicks(t) : t.map((v) => formatLog(v, scale)));
    let xTicks = allTicks;
    let xTickLabels = labelsOf(xTicks);
    for (let k = 2; xTicks.length > 2 && overlapping(xTicks.map(xPixel), xTickLabels); k++) {
      xTicks = allTicks.filter((_, i) => i % k === 0);
      xTickLabels = labelsOf(xTicks);
    }
    const pixelSeries = series.map((s) => s.points.map(([x, y]) => [xPixel(x), yPixel(y)] as Pt));
    const taken = (r: PixelRect) =>
      pixelSeries.some((pts, i) => {
        const m = (series[i].width ?? 2) / 2 + 3 + (series[i].markers ? 3 : 0);
        const g = { x: r.x - m, y: r.y - m, w: r.w + 2 * m, h: r.h + 2 * m };
        return pts.length === 1 ? inside(pts[0], g) : pts.slice(1).some((p, j) => segmentHitsRect(pts[j], p, g));
      }) ||
      marks.some((mk) => {
        const g = { x: r.x - 4, y: r.y - 4, w: r.w + 8, h: r.h + 8 };
        return segmentHitsRect([xPixel(mk.x), plot.y], [xPixel(mk.x), plot.y + plot.h], g) || (mk.point !== undefined && inside([xPixel(mk.point[0]), yPixel(mk.point[1])], { x: g.x - 6, y: g.y - 6, w: g.w + 12, h: g.h + 12 }));
      });
    // Corners first, then every position on an 8-pixel grid, nearest a corner first (matplotlib's "best").
    const m = 4;
    const [left0, right0] = [plot.x + m, plot.x + plot.w - legendW - m];
    const [top0, bottom0] = [plot.y + m, plot.y + plot.h - legendH - m];
    const candidates: PixelRect[] = [];
    for (let y = top0; y <= bottom0; y += 8) for (let x = left0; x <= right0; x += 8) candidates.push({ x: Math.round(x), y: Math.round(y), w: legendW, h: legendH });
    for (const [x, y] of [[right0, bottom0], [left0, bottom0], [right0, top0], [left0, top0]]) candidates.push({ x: Math.round(x), y: Math.round(y), w: legendW, h: legendH });
    const toCorner = (r: PixelRect) => Math.min(Math.hypot(r.x - left0, r.y - top0) * 1.01, Math.hypot(r.x - right0, r.y - top0), Math.hypot(r.x - left0, r.y - bottom0) * 1.03, Math.hypot(r.x - right0, r.y - bottom0) * 1.02);
    candidates.sort((a, b) => toCorner(a) - toCorner(b));
    const fits = right0 >= left0 && bottom0 >= top0;
    const free = below || !fits ? undefined : candidates.find((r) => !taken(r));
    const legend: PixelRect = free ?? { x: plot.x, y: plot.y + plot.h + axesBottom, w: plotW, h: belowH };
    return {
      frame: { plot, legend, legendInside: free !== undefined, xPixel, yPixel, xTicks, yTicks },
      series,
      marks,
      height,
      ox,
      width,
      xTickLabels,
      yTickLabels,
      legendEntries: entries,
      legendRows: rows,
    };
  };
  const inner = build(false);
  return entries.length === 0 || inner.frame.legendInside ? inner : build(true);
}

function drawPanel(s: Surface, panel: ChartPanel, l: PanelLayout): void {
  const { plot, xPixel, yPixel, xTicks, yTicks } = l.frame;
  const scale = panel.xScale ?? 'linear';
  s.text(l.ox + (l.width - textWidth(panel.title)) / 2, PAD, panel.title, INK);
  // Grid, ticks and their labels.
  yTicks.forEach((v, i) => {
    const y = Math.round(yPixel(v));
    s.rect(plot.x + 1, y, plot.w - 2, 1, GRID);
    s.rect(plot.x - TICK, y, TICK, 1, AXIS);
    s.text(plot.x - TICK - 3 - textWidth(l.yTickLabels[i]), y - Math.floor(TEXT_HEIGHT / 2), l.yTickLabels[i], INK);
  });
  xTicks.forEach((v, i) => {
    const x = Math.round(xPixel(v));
    s.rect(x, plot.y + 1, 1, plot.h - 2, GRID);
    s.rect(x, plot.y + plot.h, 1, TICK, AXIS);
    s.text(x - textWidth(l.xTickLabels[i]) / 2, plot.y + plot.h + TICK + 3, l.xTickLabels[i], INK);
  });
  if (scale === 'log10' && xTicks.length > 0) {
    // Minor ticks at 2…9 × 10^k show that the axis is logarithmic.
    for (let d = xTicks[0] / 10; d <= xTicks[xTicks.length - 1]; d *= 10) {
      for (let k = 2; k <= 9; k++) {
        const x = Math.round(xPixel(d * k));
        if (x > plot.x + INSET - 1 && x < plot.x + plot.w - INSET + 1) s.rect(x, plot.y + plot.h, 1, TICK / 2, AXIS);
      }
    }
  }
  s.strokeRect(plot.x, plot.y, plot.w, plot.h, AXIS);
  s.text(plot.x + (plot.w - textWidth(panel.xLabel)) / 2, plot.y + plot.h + TICK + 3 + TEXT_HEIGHT + PAD, panel.xLabel, INK);
  if (panel.yLabel) s.text(l.ox + PAD, plot.y + (plot.h + textWidth(panel.yLabel)) / 2, panel.yLabel, INK, 1, true);

  for (const ser of l.series) {
    const pts = ser.points.map(([x, y]) => [xPixel(x), yPixel(y)] as Pt);
    s.line(pts, ser.colour, { width: ser.width ?? 2, dash: ser.dashed ? [7, 4] : undefined, title: ser.name });
    if (ser.markers) for (const [x, y] of pts) s.disc(x, y, 2.5, ser.colour);
  }
  for (const mk of l.marks) {
    const x = Math.round(xPixel(mk.x));
    s.line([[x, plot.y + 1], [x, plot.y + plot.h - 2]], mk.colour, { width: 1, dash: [4, 3], title: mk.label });
    if (mk.point) {
      const [px, py] = [xPixel(mk.point[0]), yPixel(mk.point[1])];
      s.disc(px, py, 6, mk.colour);
      s.disc(px, py, 3, WHITE);
    }
  }
  drawLegend(s, l);
}

function drawLegend(s: Surface, l: PanelLayout): void {
  if (l.legendEntries.length === 0) return;
  const { legend, legendInside } = l.frame;
  const place = legendInside
    ? l.legendEntries.map((entry, i) => ({ entry, x: legend.x + PAD, y: legend.y + PAD + i * ROW }))
    : l.legendRows.map((r) => ({ entry: r.entry, x: legend.x + r.x, y: legend.y + r.y }));
  if (legendInside) {
    s.rect(legend.x, legend.y, legend.w, legend.h, WHITE);
    s.strokeRect(legend.x, legend.y, legend.w, legend.h, LEGEND_EDGE);
  }
  for (const { entry, x, y } of place) {
    const mid = y + Math.floor(TEXT_HEIGHT / 2);
    if (entry.kind === 'mark') {
      s.line([[x + SWATCH / 2, y], [x + SWATCH / 2, y + TEXT_HEIGHT - 1]], entry.colour, { width: 1 });
      s.disc(x + SWATCH / 2, mid, 4, entry.colour);
      s.disc(x + SWATCH / 2, mid, 2, WHITE);
    } else {
      s.line([[x, mid], [x + SWATCH, mid]], entry.colour, { width: 2, dash: entry.kind === 'dashed' ? [7, 4] : undefined });
    }
    s.text(x + SWATCH + PAD, y, entry.label, INK);
  }
}

/** [lo, hi] of `vs`, widened by `half` on each side when every value is the same (or there is none). */
function extent(vs: number[], half: number): [number, number] {
  if (vs.length === 0) return [0, 1];
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  return lo === hi ? [lo - half, hi + half] : [lo, hi];
}

/**
 * About `target` ticks at round values (1, 2, 2.5 or 5 × 10^k apart) inside [lo, hi];
 * `integer` keeps the spacing a whole number (epochs).
 */
function linearTicks(lo: number, hi: number, target: number, integer: boolean): number[] {
  const raw = (hi - lo) / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.ceil(lo / step - 1e-9);
  const out: number[] = [];
  for (let k = first; k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/** Tick labels with as many decimals as the spacing needs, and no more. */
function formatTicks(ticks: number[]): string[] {
  if (ticks.length === 0) return [];
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(ticks[0]) || 1;
  const big = Math.max(...ticks.map(Math.abs));
  if (big >= 1e5 || (big > 0 && big < 1e-3)) return ticks.map((t) => (t === 0 ? '0' : t.toExponential(Math.max(0, Math.ceil(-Math.log10(step / big) - 1e-9)))));
  // The fewest decimals that write the spacing exactly: 0.25 needs two (1.25, not "1.3"), 0.5 one.
  let decimals = 0;
  while (decimals < 10 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6 * step * 10 ** decimals) decimals++;
  return ticks.map((t) => t.toFixed(decimals));
}

function formatLog(v: number, scale: 'log10' | 'log2'): string {
  if (scale === 'log2') return v >= 1 ? String(Math.round(v)) : `1/${Math.round(1 / v)}`;
  const e = Math.round(Math.log10(v));
  return e >= -2 && e <= 3 ? String(Number(v.toPrecision(1))) : `1e${e}`;
}

function overlapping(xs: number[], labels: string[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i] - xs[i - 1] < (textWidth(labels[i]) + textWidth(labels[i - 1])) / 2 + 8) return true;
  return false;
}

function inside([x, y]: Pt, r: PixelRect): boolean {
  return x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h;
}

/** Whether segment a–b passes through rectangle r (Liang–Barsky clipping). */
function segmentHitsRect(a: Pt, b: Pt, r: PixelRect): boolean {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  let t0 = 0;
  let t1 = 1;
  const edges: [number, number][] = [
    [-dx, a[0] - r.x],
    [dx, r.x + r.w - a[0]],
    [-dy, a[1] - r.y],
    [dy, r.y + r.h - a[1]],
  ];
  for (const [p, q] of edges) {
    if (p === 0) {
      if (q < 0) return false;
    } else {
      const t = q / p;
      if (p < 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
      if (t0 > t1) return false;
    }
  }
  return true;
}

const css = (c: Rgb) => `rgb(${c[0]},${c[1]},${c[2]})`;
const f1 = (v: number) => String(Math.round(v * 10) / 10);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Writes the same drawing calls as SVG elements; text in a monospace face sized like the bitmap font. */
class SvgSurface implements Surface {
  private readonly parts: string[] = [];

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.parts.push(`<rect x="${f1(x)}" y="${f1(y)}" width="${f1(w)}" height="${f1(h)}" fill="${css(c)}"/>`);
  }

  strokeRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.parts.push(`<rect x="${f1(x + 0.5)}" y="${f1(y + 0.5)}" width="${f1(w - 1)}" height="${f1(h - 1)}" fill="none" stroke="${css(c)}"/>`);
  }

  disc(cx: number, cy: number, r: number, c: Rgb): void {
    this.parts.push(`<circle cx="${f1(cx)}" cy="${f1(cy)}" r="${f1(r)}" fill="${css(c)}"/>`);
  }

  line(points: readonly Pt[], c: Rgb, style: LineStyle & { title?: string } = {}): void {
    if (points.length === 0) return;
    const d = points.map(([x, y], k) => `${k ? 'L' : 'M'}${f1(x)},${f1(y)}`).join(' ');
    const dash = style.dash ? ` stroke-dasharray="${style.dash.join(',')}"` : '';
    const title = style.title ? `<title>${esc(style.title)}</title>` : '';
    this.parts.push(`<path d="${d}" fill="none" stroke="${css(c)}" stroke-width="${style.width ?? 1}"${dash}>${title}</path>`);
  }

  text(x: number, y: number, s: string, c: Rgb, scale = 1, vertical = false): void {
    const size = 10 * scale;
    const at = vertical ? `transform="translate(${f1(x + 8 * scale)},${f1(y)}) rotate(-90)"` : `x="${f1(x)}" y="${f1(y + 8 * scale)}"`;
    this.parts.push(`<text ${at} font-size="${size}" fill="${css(c)}">${esc(s)}</text>`);
  }

  document(width: number, height: number): string {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace">\n<rect width="100%" height="100%" fill="white"/>\n${this.parts.join('\n')}\n</svg>\n`;
  }
}
