import type { tf } from '@kiln/core';
import { ConfigError } from '@kiln/core';
import { ConfusionMatrix, type ConfusionMatrixState } from './confusion-matrix.js';
import { safeDivide, type Metric } from './metric.js';

/** Options of {@link PrecisionRecallF1}. */
export interface PrecisionRecallF1Options {
  /** Number of classes K (at least 2); labels are 0 … K-1. */
  numClasses: number;
  /**
   * The value of a ratio whose denominator is 0: precision of a class never predicted, recall of a
   * class never a target, F1 of a class that is neither (sklearn's `zero_division`; default 0, the
   * value sklearn's default "warn" also uses).
   */
  zeroDivision?: 0 | 1;
}

/** Precision, recall and F1 of one class or one average, each in [0, 1] (NaN for a macro average over no class). */
export interface PrecisionRecallF1Scores {
  /** TP / (TP + FP): the share of the predictions of a class that are right. */
  precision: number;
  /** TP / (TP + FN): the share of the targets of a class that are predicted. */
  recall: number;
  /** 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall (for an average, the average of the per-class F1). */
  f1: number;
}

/** Scores of a single-label classifier, as {@link classificationReport} computes them from a confusion matrix. */
export interface ClassificationReport {
  /** Per class, indexed by label. */
  perClass: {
    /** Precision of each class [K]. */
    precision: number[];
    /** Recall of each class [K]. */
    recall: number[];
    /** F1 of each class [K]. */
    f1: number[];
    /** Targets of each class [K] (row sums of the confusion matrix). */
    support: number[];
  };
  /** From the pooled counts (for single-label classification all three equal the accuracy). */
  micro: PrecisionRecallF1Scores;
  /** Unweighted mean over the classes that occur among the targets or the predictions. */
  macro: PrecisionRecallF1Scores;
  /** Mean weighted by each class's support (number of targets). */
  weighted: PrecisionRecallF1Scores;
  /** Fraction of examples predicted right, ΣTP / N (NaN with no examples). */
  accuracy: number;
}

/**
 * Precision, recall and F1 per class and averaged, from a confusion matrix (row = target,
 * column = prediction). Follows sklearn's `precision_recall_fscore_support` with `labels` unset:
 * F1 = 2·TP / (2·TP + FP + FN) per class; macro and weighted averages run over the classes that
 * occur among the targets or the predictions, so a class absent from both does not count.
 */
export function classificationReport(matrix: readonly (readonly number[])[], zeroDivision: 0 | 1 = 0): ClassificationReport {
  const k = matrix.length;
  const tp = matrix.map((row, i) => row[i]);
  const support = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const predicted = matrix[0].map((_, j) => matrix.reduce((a, row) => a + row[j], 0));
  const precision = tp.map((t, i) => safeDivide(t, predicted[i], zeroDivision));
  const recall = tp.map((t, i) => safeDivide(t, support[i], zeroDivision));
  const f1 = tp.map((t, i) => safeDivide(2 * t, support[i] + predicted[i], zeroDivision));
  const seen = Array.from({ length: k }, (_, i) => i).filter((i) => support[i] + predicted[i] > 0);
  const total = support.reduce((a, b) => a + b, 0);
  const sumTp = tp.reduce((a, b) => a + b, 0);
  const mean = (v: number[]): number => (seen.length === 0 ? NaN : seen.reduce((a, i) => a + v[i], 0) / seen.length);
  const weightedMean = (v: number[]): number => safeDivide(seen.reduce((a, i) => a + v[i] * support[i], 0), total, zeroDivision);
  // Single-label: pooled FP and pooled FN both equal total − ΣTP.
  const micro = safeDivide(sumTp, total, zeroDivision);
  return {
    perClass: { precision, recall, f1, support },
    micro: { precision: micro, recall: micro, f1: micro },
    macro: { precision: mean(precision), recall: mean(recall), f1: mean(f1) },
    weighted: { precision: weightedMean(precision), recall: weightedMean(recall), f1: weightedMean(f1) },
    accuracy: total === 0 ? NaN : sumTp / total,
  };
}

/**
 * Per-class and averaged precision / recall / F1 of a single-label classifier, accumulated as a
 * confusion matrix on the device (see {@link classificationReport} for the definitions).
 */
export class PrecisionRecallF1 implements Metric<ConfusionMatrixState, ClassificationReport> {
  /** The value a ratio with a zero denominator takes (default 0); see {@link PrecisionRecallF1Options.zeroDivision}. */
  readonly zeroDivision: 0 | 1;
  private readonly matrix: ConfusionMatrix;

  constructor(options: PrecisionRecallF1Options) {
    this.matrix = new ConfusionMatrix({ numClasses: options.numClasses });
    this.zeroDivision = options.zeroDivision ?? 0;
    if (this.zeroDivision !== 0 && this.zeroDivision !== 1) throw new ConfigError('PrecisionRecallF1.zeroDivision', '0 or 1', options.zeroDivision);
  }

  /** Number of classes K. */
  get numClasses(): number {
    return this.matrix.numClasses;
  }

  update(preds: tf.Tensor, targets: tf.Tensor): void {
    this.matrix.update(preds, targets);
  }

  compute(): ClassificationReport {
    return classificationReport(this.matrix.compute(), this.zeroDivision);
  }

  /** The confusion matrix behind the scores. */
  confusionMatrix(): number[][] {
    return this.matrix.compute();
  }

  reset(): void {
    this.matrix.reset();
  }

  merge(other: this): void {
    this.matrix.merge(other.matrix);
  }

  stateDict(): ConfusionMatrixState {
    return this.matrix.stateDict();
  }

  loadStateDict(state: ConfusionMatrixState): void {
    this.matrix.loadStateDict(state);
  }

  dispose(): void {
    this.matrix.dispose();
  }
}
