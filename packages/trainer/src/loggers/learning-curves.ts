import { lineChart, type ChartMark, type ChartPanel, type LineChart } from '../plot/line-chart.js';
import type { Rgb } from '../plot/raster.js';

/** Options of {@link learningCurves}. */
export interface LearningCurvesOptions {
  /** Metric whose best epoch is marked (default `val_loss` when logged, else `train_loss`). */
  monitor?: string;
  /** Whether the best value of `monitor` is its lowest or highest (default: `max` for names with `acc`, `f1`, `auc`, `precision` or `recall`, else `min`). */
  mode?: 'min' | 'max';
}

/** Colour of the training curves (matplotlib's first colour). */
export const TRAIN_COLOUR: Rgb = [31, 119, 180];
/** Colour of the validation curves. */
export const VAL_COLOUR: Rgb = [214, 39, 40];
/** Colour of the best-epoch mark. */
export const BEST_COLOUR: Rgb = [44, 160, 44];

const QUANTITIES = [
  { key: 'loss', title: 'loss' },
  { key: 'acc', title: 'accuracy' },
] as const;

/** The mode a metric is usually judged by: accuracies and scores are maximised, losses and errors minimised. */
export function defaultMode(metric: string): 'min' | 'max' {
  return /acc|f1|auc|auroc|precision|recall|r2/i.test(metric) ? 'max' : 'min';
}

/**
 * The epoch (0-based, as logged) with the best value of `monitor` among `rows`, and that value;
 * the first of equal values wins, as ModelCheckpoint and EarlyStopping keep the first best.
 */
export function bestEpoch(rows: readonly Record<string, number>[], monitor: string, mode: 'min' | 'max'): { epoch: number; value: number } | undefined {
  let best: { epoch: number; value: number } | undefined;
  for (const r of rows) {
    const v = r[monitor];
    if (!Number.isFinite(r.epoch) || !Number.isFinite(v)) continue;
    if (!best || (mode === 'min' ? v < best.value : v > best.value)) best = { epoch: r.epoch, value: v };
  }
  return best;
}

/**
 * Learning curves: one panel per quantity logged (loss, accuracy), training solid and validation
 * dashed against the epoch (1-based ticks, whole numbers), and the best epoch of the monitored
 * metric marked in every panel by a vertical line, with a ring on the monitored curve. `rows` are
 * epoch-level metric rows as the loggers receive them (`epoch` 0-based). Render with `.png()` or
 * `.svg()`; both come from the same layout.
 */
export function learningCurves(rows: readonly Record<string, number>[], options: LearningCurvesOptions = {}): LineChart {
  const epochRows = rows.filter((r) => r.epoch !== undefined && Number.isFinite(r.epoch));
  const has = (k: string) => epochRows.some((r) => Number.isFinite(r[k]));
  const monitor = options.monitor ?? (has('val_loss') ? 'val_loss' : 'train_loss');
  const mode = options.mode ?? defaultMode(monitor);
  const best = bestEpoch(epochRows, monitor, mode);
  const panels: ChartPanel[] = QUANTITIES.map(({ key, title }) => {
    const series = (['train', 'val'] as const)
      .filter((s) => has(`${s}_${key}`))
      .map((s) => ({
        name: `${s}_${key}`,
        colour: s === 'train' ? TRAIN_COLOUR : VAL_COLOUR,
        dashed: s === 'val',
        markers: epochRows.length <= 60,
        points: epochRows.filter((r) => Number.isFinite(r[`${s}_${key}`])).map((r) => [r.epoch + 1, r[`${s}_${key}`]] as const),
      }));
    const marks: ChartMark[] = best
      ? [{ x: best.epoch + 1, point: series.some((s) => s.name === monitor) ? [best.epoch + 1, best.value] : undefined, label: `best epoch ${best.epoch + 1}: ${monitor} ${formatValue(best.value)}`, colour: BEST_COLOUR }]
      : [];
    return { title, xLabel: 'epoch', yLabel: title, integerX: true, series, marks };
  }).filter((p) => p.series.length > 0);
  // A run that logged neither loss nor accuracy still gets an (empty) panel rather than an error at the end of training.
  return lineChart(panels.length > 0 ? panels : [{ title: 'loss', xLabel: 'epoch', integerX: true, series: [] }]);
}

/** Learning curves as a self-contained SVG document (see {@link learningCurves}). */
export function learningCurvesSvg(rows: readonly Record<string, number>[], options: LearningCurvesOptions = {}): string {
  return learningCurves(rows, options).svg();
}

/** Learning curves as a PNG file (see {@link learningCurves}). */
export function learningCurvesPng(rows: readonly Record<string, number>[], options: LearningCurvesOptions = {}): Uint8Array {
  return learningCurves(rows, options).png();
}

function formatValue(v: number): string {
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}
