import { tf, noGrad } from '@kiln/core';
import { binaryCrossEntropyWithLogits, type Module } from '@kiln/layers';
import type { Batch } from '@kiln/data';
import { TrainingModule, type OptimizerConfig, type StepOutput } from './training-module.js';
import { optimizerConfigFrom, type ModuleOptimizerOptions } from './optimizer-options.js';

export interface MultiLabelClassificationModuleOptions extends ModuleOptimizerOptions {
  /**
   * Weight of the positive term per label (PyTorch's `pos_weight`): above 1 raises recall of a rare
   * label; negatives / positives of each label in the training set balances them.
   */
  posWeight?: number[];
  /** Probability above which a label counts as predicted, for the metrics (default 0.5). */
  threshold?: number;
}

/**
 * Label decisions sigmoid(logits) > threshold against multi-hot targets [B, K]: the fraction of
 * correct decisions (`labelAcc`) and of examples with every label right (`exactMatch`).
 */
export function multiLabelMetrics(logits: tf.Tensor, targets: tf.Tensor, threshold = 0.5): {
  /** Fraction of all B × K label decisions that match the targets, in [0, 1]. */
  labelAcc: tf.Scalar;
  /** Fraction of the B examples whose K decisions all match, in [0, 1]. */
  exactMatch: tf.Scalar;
} {
  // Off the gradient tape: logged numbers that nothing differentiates (see `noGrad`).
  return noGrad(() =>
    tf.tidy(() => {
      const predicted = tf.greater(tf.sigmoid(logits), threshold);
      const truth = tf.greater(tf.cast(targets, 'float32'), 0.5);
      const right = tf.equal(predicted, truth);
      const labelAcc = tf.mean(tf.cast(right, 'float32')) as tf.Scalar;
      const exactMatch = tf.mean(tf.cast(tf.all(right, -1), 'float32')) as tf.Scalar;
      return { labelAcc, exactMatch };
    }),
  );
}

/**
 * Multi-label classification: any number of K labels may hold for one example. Wraps any network
 * with K logits out with binary cross-entropy from logits (each label its own yes/no, `posWeight`
 * per label), and logs `loss`, `label_acc` and `exact_match` per stage. Targets are multi-hot
 * rows [B, K] (int or float; soft labels in [0, 1] are allowed for the loss). Both metrics are
 * means over examples, so their epoch values are exact, not averages of per-batch ratios.
 */
export class MultiLabelClassificationModule extends TrainingModule {
  constructor(
    readonly model: Module,
    private readonly options: MultiLabelClassificationModuleOptions = {},
  ) {
    super();
  }

  private step(batch: Batch): StepOutput {
    const logits = this.model.forward(batch.x);
    const loss = binaryCrossEntropyWithLogits(logits, batch.y, { posWeight: this.options.posWeight }) as tf.Scalar;
    const { labelAcc, exactMatch } = multiLabelMetrics(logits, batch.y, this.options.threshold ?? 0.5);
    return { loss, logs: { loss, label_acc: labelAcc, exact_match: exactMatch }, batchSize: logits.shape[0] ?? 1 };
  }

  trainingStep(batch: Batch): StepOutput {
    return this.step(batch);
  }

  /** Binary cross-entropy, `label_acc` and `exact_match` of one batch, logged as `val_*`. */
  override validationStep(batch: Batch): StepOutput {
    return this.step(batch);
  }

  /** The same loss and metrics as `validationStep`, logged as `test_*`. */
  override testStep(batch: Batch): StepOutput {
    return this.step(batch);
  }

  /** Per-label probabilities sigmoid(logits) [B, K]. */
  override predictStep(batch: Batch): tf.Tensor {
    return tf.sigmoid(this.model.forward(batch.x));
  }

  configureOptimizers(): OptimizerConfig {
    return optimizerConfigFrom(this.model, this.options);
  }

  override hparams(): Record<string, unknown> {
    return { model: this.model.typeName, parameters: this.model.numParameters(), lr: this.options.lr ?? 1e-3, ...(this.options.posWeight ? { posWeight: this.options.posWeight } : {}), threshold: this.options.threshold ?? 0.5, ...this.options.hparams };
  }
}
