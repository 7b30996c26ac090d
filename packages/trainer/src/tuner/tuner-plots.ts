import { lineChart, type LineChart } from '../plot/line-chart.js';
import type { Rgb } from '../plot/raster.js';
import { BEST_COLOUR, TRAIN_COLOUR } from '../loggers/learning-curves.js';
import type { LrFindResult, ScaleBatchSizeResult } from './tuner.js';

const RAW: Rgb = [170, 190, 215];
const MEMORY: Rgb = [148, 103, 189];

/**
 * The learning-rate range test as a chart: raw and smoothed loss against the rate on a log axis,
 * the suggested rate marked. Losses above four times the first smoothed one are left out of the
 * y range, so the diverging tail does not flatten the part worth reading.
 */
export function lrFindChart(result: LrFindResult): LineChart {
  const cap = 4 * Math.max(result.smoothedLosses[0] ?? Infinity, Math.min(...result.smoothedLosses));
  const keep = (l: number) => Number.isFinite(l) && l <= cap;
  const i = result.lrs.indexOf(result.suggestion);
  return lineChart([
    {
      title: 'learning-rate range test',
      xLabel: 'learning rate',
      yLabel: 'loss',
      xScale: 'log10',
      series: [
        { name: 'loss', colour: RAW, width: 1, points: result.lrs.map((lr, k) => [lr, result.losses[k]] as const).filter(([, l]) => keep(l)) },
        { name: 'smoothed loss', colour: TRAIN_COLOUR, points: result.lrs.map((lr, k) => [lr, result.smoothedLosses[k]] as const).filter(([, l]) => keep(l)) },
      ],
      marks: Number.isFinite(result.suggestion) ? [{ x: result.suggestion, point: i >= 0 && keep(result.smoothedLosses[i]) ? [result.suggestion, result.smoothedLosses[i]] : undefined, label: `suggested lr ${formatLr(result.suggestion)}`, colour: BEST_COLOUR }] : [],
    },
  ]);
}

/** The batch-size search as a chart: throughput and peak backend memory against the batch size (log2 axis), the suggestion marked. */
export function batchSizeChart(result: ScaleBatchSizeResult): LineChart {
  const fits = result.trials.filter((t) => t.fits).sort((a, b) => a.batchSize - b.batchSize);
  const mark = (y: (t: (typeof fits)[number]) => number) => {
    const t = fits.find((f) => f.batchSize === result.suggestion);
    return [{ x: result.suggestion, point: t ? ([result.suggestion, y(t)] as const) : undefined, label: `suggested batch size ${result.suggestion}`, colour: BEST_COLOUR }];
  };
  return lineChart([
    { title: 'throughput', xLabel: 'batch size', yLabel: 'samples/s', xScale: 'log2', series: [{ name: 'samples per second', colour: TRAIN_COLOUR, markers: true, points: fits.map((t) => [t.batchSize, t.samplesPerSec] as const) }], marks: mark((t) => t.samplesPerSec) },
    { title: 'peak backend memory', xLabel: 'batch size', yLabel: 'MiB', xScale: 'log2', series: [{ name: 'peak MiB per step', colour: MEMORY, markers: true, points: fits.map((t) => [t.batchSize, t.peakBytes / 2 ** 20] as const) }], marks: mark((t) => t.peakBytes / 2 ** 20) },
  ]);
}

/** 0.003 or 3.16e-5: plain decimals where they stay short. */
function formatLr(v: number): string {
  return v >= 1e-3 && v < 1e3 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}
