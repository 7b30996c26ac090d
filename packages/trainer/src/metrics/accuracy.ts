import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';
import { DeviceSum, checkBatch, checkSameConfig, predictedLabels, targetLabels, type Metric } from './metric.js';

/** Options of {@link Accuracy}. */
export interface AccuracyOptions {
  /**
   * Count a row as right when its target is among the k highest scores (default 1: the arg-max).
   * Ties go to the lower class index, as arg-max breaks them, so `topK: 1` is plain accuracy.
   * (sklearn's `top_k_accuracy_score` breaks ties towards the higher index; without ties the two agree.)
   */
  topK?: number;
}

/** Saved state of {@link Accuracy}: the counts its value is computed from. */
export interface AccuracyState {
  /** Examples counted right so far (top-k hits when `topK` > 1). */
  correct: number;
  /** Examples seen so far. */
  total: number;
}

/**
 * Fraction of examples classified right (`accuracy_score`), or top-k accuracy. Predictions are
 * scores [N, K] or, for top-1, labels [N]; targets are labels [N] or one-hot [N, K].
 */
export class Accuracy implements Metric<AccuracyState> {
  /** The k of top-k accuracy (1: plain accuracy). */
  readonly topK: number;
  private readonly correct = new DeviceSum([], 'int32');
  private total = 0;

  constructor(options: AccuracyOptions = {}) {
    this.topK = options.topK ?? 1;
    if (!Number.isInteger(this.topK) || this.topK < 1) throw new ConfigError('Accuracy.topK', 'an integer ≥ 1', options.topK);
  }

  update(preds: tf.Tensor, targets: tf.Tensor): void {
    checkBatch(preds, targets, 'Accuracy.update');
    const hits = tf.tidy(() => {
      const t = targetLabels(targets, 'Accuracy.update');
      if (this.topK === 1) return tf.sum(tf.cast(tf.equal(predictedLabels(preds, 'Accuracy.update'), t), 'int32'));
      if (preds.rank !== 2) throw new ShapeMismatchError('Accuracy.update', `scores [N, K] for top-${this.topK} accuracy`, preds.shape);
      const k = preds.shape[1]!;
      const scores = tf.cast(preds, 'float32');
      const mask = tf.oneHot(t, k);
      const targetScore = tf.sum(tf.mul(scores, mask), 1, true);
      // Rank of the target: classes scoring higher, plus tied classes with a lower index.
      const higher = tf.sum(tf.cast(tf.greater(scores, targetScore), 'int32'), 1);
      const lowerIndex = tf.less(tf.range(0, k, 1, 'int32').expandDims(0), tf.expandDims(t, 1));
      const tiedBefore = tf.sum(tf.cast(tf.logicalAnd(tf.equal(scores, targetScore), lowerIndex), 'int32'), 1);
      return tf.sum(tf.cast(tf.less(tf.add(higher, tiedBefore), this.topK), 'int32'));
    });
    this.correct.add(hits);
    hits.dispose();
    this.total += targets.shape[0]!;
  }

  /** NaN before any update. */
  compute(): number {
    return this.total === 0 ? NaN : this.correct.read()[0] / this.total;
  }

  reset(): void {
    this.correct.zero();
    this.total = 0;
  }

  merge(other: this): void {
    checkSameConfig('Accuracy', { topK: this.topK }, { topK: other.topK });
    this.correct.add(other.correct.tensor);
    this.total += other.total;
  }

  stateDict(): AccuracyState {
    return { correct: this.correct.read()[0], total: this.total };
  }

  loadStateDict(state: AccuracyState): void {
    this.correct.load([state.correct], 'Accuracy.loadStateDict.correct');
    this.total = state.total;
  }

  dispose(): void {
    this.correct.dispose();
  }
}
