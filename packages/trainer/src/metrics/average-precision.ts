import { RankingMetric, type RankingMetricOptions, type ScoreGroups } from './ranking-metric.js';

/**
 * Average precision (sklearn's `average_precision_score`): Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct
 * scores from the highest down, without interpolation. One-vs-rest for K classes, with 'micro'
 * pooling every (example, class) pair. NaN for a class without positives; averages skip it.
 */
export class AveragePrecision extends RankingMetric {
  constructor(options: RankingMetricOptions = {}) {
    super('AveragePrecision', options);
  }

  protected area(g: ScoreGroups): number {
    const p = g.positives.reduce((a, b) => a + b, 0);
    if (p === 0) return NaN;
    let tp = 0;
    let seen = 0;
    let ap = 0;
    for (let i = 0; i < g.positives.length; i++) {
      tp += g.positives[i];
      seen += g.positives[i] + g.negatives[i];
      ap += (g.positives[i] / p) * (tp / seen);
    }
    return ap;
  }
}
