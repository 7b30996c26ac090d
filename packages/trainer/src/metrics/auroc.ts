import { RankingMetric, type RankingMetricOptions, type ScoreGroups } from './ranking-metric.js';

/**
 * Area under the ROC curve (sklearn's `roc_auc_score`; one-vs-rest for K classes): the trapezoid
 * area under (false-positive rate, true-positive rate), one point per distinct score, so tied
 * scores count half — the probability that a random positive outscores a random negative.
 * NaN for a class without positives or without negatives (sklearn raises there); averages skip it.
 */
export class AUROC extends RankingMetric {
  constructor(options: RankingMetricOptions = {}) {
    super('AUROC', options);
  }

  protected area(g: ScoreGroups): number {
    const p = g.positives.reduce((a, b) => a + b, 0);
    const n = g.negatives.reduce((a, b) => a + b, 0);
    if (p === 0 || n === 0) return NaN;
    let tp = 0;
    let area = 0;
    for (let i = 0; i < g.positives.length; i++) {
      area += g.negatives[i] * (tp + g.positives[i] / 2);
      tp += g.positives[i];
    }
    return area / (p * n);
  }

  protected override supportsMicro(): boolean {
    return false;
  }
}
