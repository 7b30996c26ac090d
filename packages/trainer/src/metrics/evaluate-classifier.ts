import { tf, ConfigError } from '@kiln/core';
import type { AnyBatch } from '@kiln/data';
import type { TrainingModule } from '../training-module.js';
import { PrecisionRecallF1, type ClassificationReport } from './precision-recall-f1.js';

/** Options of {@link evaluateClassifier}. */
export interface EvaluateClassifierOptions {
  /** Number of classes K (labels 0 … K-1). */
  numClasses: number;
  /** Names for the per-class entries of the summary (default: '0', '1', …). */
  classNames?: readonly string[];
  /** See {@link PrecisionRecallF1Options.zeroDivision} (default 0). */
  zeroDivision?: 0 | 1;
}

/** What {@link evaluateClassifier} returns. */
export interface ClassifierEvaluation {
  /** K×K counts, row = target class, column = predicted class. */
  confusionMatrix: number[][];
  /** Per-class precision, recall, F1 and support, their micro / macro / weighted averages, and the accuracy. */
  report: ClassificationReport;
  /** Flat numbers for a run summary: `precision/<class>`, `recall/<class>`, `f1/<class>`, `support/<class>`, and the averages as `precision_macro`, …. */
  summary: Record<string, number>;
}

/**
 * Runs a classifier over a loader (in eval mode, its mode restored afterwards) and returns the
 * confusion matrix and per-class precision / recall / F1. Predictions are the module's
 * `predictStep` outputs (logits or probabilities [N, K]); targets are the batches' labels [N] or
 * one-hot [N, K]. Batches are disposed as they are used; the metric reads the device once at the end.
 */
export async function evaluateClassifier(module: TrainingModule, loader: Iterable<AnyBatch> | AsyncIterable<AnyBatch>, options: EvaluateClassifierOptions): Promise<ClassifierEvaluation> {
  if (options.classNames && options.classNames.length !== options.numClasses) {
    throw new ConfigError('evaluateClassifier.classNames', `${options.numClasses} names (numClasses)`, `${options.classNames.length} names`);
  }
  const metric = new PrecisionRecallF1({ numClasses: options.numClasses, zeroDivision: options.zeroDivision });
  const wasTraining = module.model.training;
  module.model.eval();
  try {
    let i = 0;
    for await (const batch of loader) {
      try {
        const preds = tf.tidy(() => module.predictStep(batch, i));
        try {
          metric.update(preds, batch.y as tf.Tensor);
        } finally {
          preds.dispose();
        }
      } finally {
        tf.dispose([batch.x, batch.y] as tf.TensorContainer);
      }
      i++;
    }
    const confusionMatrix = metric.confusionMatrix();
    const report = metric.compute();
    return { confusionMatrix, report, summary: classificationSummary(report, options.classNames) };
  } finally {
    metric.dispose();
    module.model.train(wasTraining);
  }
}

/** A report as flat named numbers (per class by name, then the micro / macro / weighted averages). */
export function classificationSummary(report: ClassificationReport, classNames?: readonly string[]): Record<string, number> {
  const out: Record<string, number> = { accuracy: report.accuracy };
  report.perClass.support.forEach((support, i) => {
    const name = classNames?.[i] ?? String(i);
    out[`precision/${name}`] = report.perClass.precision[i];
    out[`recall/${name}`] = report.perClass.recall[i];
    out[`f1/${name}`] = report.perClass.f1[i];
    out[`support/${name}`] = support;
  });
  for (const avg of ['micro', 'macro', 'weighted'] as const) {
    for (const key of ['precision', 'recall', 'f1'] as const) out[`${key}_${avg}`] = report[avg][key];
  }
  return out;
}
