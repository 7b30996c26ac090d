import { tf, ConfigError, DataFormatError } from '@kiln/core';
import { DeviceSum, checkBatch, checkSameConfig, predictedLabels, targetLabels, type Metric } from './metric.js';

/** Options of {@link ConfusionMatrix}. */
export interface ConfusionMatrixOptions {
  /** Number of classes K; labels are 0 … K-1. */
  numClasses: number;
}

/** Saved state of {@link ConfusionMatrix} (and of {@link PrecisionRecallF1}, which keeps one). */
export interface ConfusionMatrixState {
  /** Number of classes K; loading checks it against the metric's. */
  numClasses: number;
  /** Row-major K×K counts: row = target class, column = predicted class. */
  counts: number[];
  /** Examples passed to `update`; more than the sum of `counts` means some label was outside 0 … K-1. */
  total: number;
}

/**
 * Counts of (target, predicted) class pairs, as sklearn's `confusion_matrix(y_true, y_pred,
 * labels=range(K))`: `matrix[i][j]` is the number of examples of class i predicted as j.
 * Predictions are scores [N, K] (arg-max) or labels [N]; targets are labels [N] or one-hot [N, K].
 */
export class ConfusionMatrix implements Metric<ConfusionMatrixState, number[][]> {
  /** Number of classes K (at least 2); labels are 0 … K-1. */
  readonly numClasses: number;
  private readonly counts: DeviceSum;
  /** Examples passed to `update`; checked against the counted ones to catch labels out of range. */
  private total = 0;

  constructor(options: ConfusionMatrixOptions) {
    const k = options.numClasses;
    if (!Number.isInteger(k) || k < 2) throw new ConfigError('ConfusionMatrix.numClasses', 'an integer ≥ 2', k);
    this.numClasses = k;
    this.counts = new DeviceSum([k, k], 'int32');
  }

  update(preds: tf.Tensor, targets: tf.Tensor): void {
    checkBatch(preds, targets, 'ConfusionMatrix.update');
    const k = this.numClasses;
    const delta = tf.tidy(() => {
      // One-hot rows outside 0…K-1 are all zero, so such labels drop out here and show up as a
      // count shortfall in compute() — a check that costs no read per batch.
      const t = tf.cast(tf.oneHot(targetLabels(targets, 'ConfusionMatrix.update'), k), 'float32');
      const p = tf.cast(tf.oneHot(predictedLabels(preds, 'ConfusionMatrix.update'), k), 'float32');
      return tf.cast(tf.matMul(t, p, true, false), 'int32');
    });
    this.counts.add(delta);
    delta.dispose();
    this.total += targets.shape[0]!;
  }

  /** The K×K matrix (row = target, column = prediction). */
  compute(): number[][] {
    const flat = this.counts.read();
    const counted = flat.reduce((a, b) => a + b, 0);
    if (counted !== this.total) {
      throw new DataFormatError('ConfusionMatrix', `${this.total - counted} of ${this.total} examples had a target or predicted label outside 0…${this.numClasses - 1}`, {
        expected: `labels below numClasses = ${this.numClasses}`,
        hint: 'set numClasses to the number of classes the data set and the model have',
      });
    }
    return Array.from({ length: this.numClasses }, (_, i) => flat.slice(i * this.numClasses, (i + 1) * this.numClasses));
  }

  reset(): void {
    this.counts.zero();
    this.total = 0;
  }

  merge(other: this): void {
    checkSameConfig('ConfusionMatrix', { numClasses: this.numClasses }, { numClasses: other.numClasses });
    this.counts.add(other.counts.tensor);
    this.total += other.total;
  }

  stateDict(): ConfusionMatrixState {
    return { numClasses: this.numClasses, counts: this.counts.read(), total: this.total };
  }

  loadStateDict(state: ConfusionMatrixState): void {
    checkSameConfig('ConfusionMatrix', { numClasses: this.numClasses }, { numClasses: state.numClasses });
    this.counts.load(state.counts, 'ConfusionMatrix.loadStateDict.counts');
    this.total = state.total;
  }

  dispose(): void {
    this.counts.dispose();
  }
}
