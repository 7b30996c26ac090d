export type { Metric } from './metric.js';
export * from './accuracy.js';
export * from './confusion-matrix.js';
export * from './precision-recall-f1.js';
export type { RankingMetric, RankingMetricOptions, RankingMetricState, ScoreGroups } from './ranking-metric.js';
export * from './auroc.js';
export * from './average-precision.js';
export * from './regression.js';
export * from './confusion-matrix-png.js';
