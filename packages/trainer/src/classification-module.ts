import { tf, ConfigError, noGrad } from '@kiln/core';
import { crossEntropy, type Module } from '@kiln/layers';
import { Adam, type Optimizer } from '@kiln/optim';
import type { Batch } from '@kiln/data';
import { forwardWithAuxiliary, hasAuxiliaryHeads } from '@kiln/zoo';
import { TrainingModule, type OptimizerConfig, type StepOutput } from './training-module.js';

/** A loss of logits and labels, reduced to a scalar. */
export type LossFn = (logits: tf.Tensor, labels: tf.Tensor) => tf.Tensor;

/** Options of `ClassificationModule`. */
export interface ClassificationModuleOptions {
  /** Loss from logits and integer labels. Default: softmax cross-entropy. */
  loss?: LossFn;
  /** Builds the optimizer over the model's trainable parameters. Default: Adam(lr). */
  optimizer?: (model: Module) => Optimizer;
  /** Or a full optimizer configuration (optimizer + scheduler). */
  configureOptimizers?: (model: Module) => OptimizerConfig;
  /** Learning rate of the default Adam optimizer (default 1e-3). */
  lr?: number;
  /** Also log top-k accuracy for these k (top-1 is always logged as `acc`). */
  topK?: number[];
  /**
   * Weight of each auxiliary classifier's loss, for models that have them (GoogLeNet and
   * Inception v3 built with `auxLogits`): the training loss is main + auxWeight · Σ aux losses,
   * each computed with `loss` against the same labels. Default: the model's `auxLossWeight`
   * (torchvision's recipe, 0.3 for GoogLeNet and 0.4 for Inception v3); 0 leaves the heads out.
   * Validation and test use the main logits only.
   */
  auxWeight?: number;
  /** More hyper-parameters for the loggers (batch size, schedule, …), merged into `hparams()`. */
  hparams?: Record<string, unknown>;
}

/** Integer class labels from labels [N] or soft/one-hot targets [N, K] (MixUp, CutMix, smoothing). */
function hardLabels(labels: tf.Tensor): tf.Tensor {
  return labels.rank === 2 ? tf.argMax(labels, -1) : tf.cast(labels, 'int32');
}

/**
 * Fraction of rows whose arg-max equals the label (for soft targets: the target's arg-max).
 * Computed off the gradient tape (`noGrad`): inside a training step it is a logged number, and
 * recording its kernels would only make tfjs copy the tensors their gradients save.
 */
export function accuracy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return noGrad(() => tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), hardLabels(labels)), 'float32')) as tf.Scalar));
}

/** Fraction of rows whose label is among the k largest logits (off the gradient tape, as `accuracy`). */
export function topKAccuracy(logits: tf.Tensor, labels: tf.Tensor, k: number): tf.Scalar {
  return noGrad(() =>
    tf.tidy(() => {
      const { indices } = tf.topk(logits, k);
      const hit = tf.any(tf.equal(indices, tf.expandDims(hardLabels(labels), 1)), 1);
      return tf.mean(tf.cast(hit, 'float32')) as tf.Scalar;
    }),
  );
}

/** Wraps any classifier (logits out) with a loss, accuracy metrics and an optimizer. */
export class ClassificationModule extends TrainingModule {
  constructor(readonly model: Module, private readonly options: ClassificationModuleOptions = {}) {
    super();
    const w = options.auxWeight;
    if (w !== undefined && !(Number.isFinite(w) && w >= 0)) throw new ConfigError('ClassificationModule.auxWeight', 'a finite number >= 0', w);
  }

  /**
   * The loss and metrics of one batch. While training a model with auxiliary classifiers, their
   * weighted losses are added to the loss (logged alone as `main_loss`); metrics read the main logits.
   */
  private step(batch: Batch, training: boolean): StepOutput {
    const lossFn = this.options.loss ?? crossEntropy;
    const model = this.model;
    const withAux = training && model.training && hasAuxiliaryHeads(model) && (this.options.auxWeight ?? model.auxLossWeight) > 0;
    const { logits, aux } = withAux ? forwardWithAuxiliary(model, batch.x) : { logits: model.forward(batch.x), aux: [] };
    const main = lossFn(logits, batch.y) as tf.Scalar;
    const weight = hasAuxiliaryHeads(model) ? (this.options.auxWeight ?? model.auxLossWeight) : 0;
    const loss = aux.length > 0 ? (tf.add(main, tf.mul(tf.addN(aux.map((a) => lossFn(a, batch.y))), weight)) as tf.Scalar) : main;
    const logs: Record<string, tf.Scalar> = aux.length > 0 ? { loss, main_loss: main } : { loss };
    logs.acc = accuracy(logits, batch.y);
    for (const k of this.options.topK ?? []) logs[`top${k}_acc`] = topKAccuracy(logits, batch.y, k);
    return { loss, logs, batchSize: batch.x.shape[0] };
  }

  trainingStep(batch: Batch): StepOutput {
    return this.step(batch, true);
  }

  /** Loss, `acc` and any top-k accuracies on the main logits alone (auxiliary heads left out), as `val_*`. */
  override validationStep(batch: Batch): StepOutput {
    return this.step(batch, false);
  }

  /** The same loss and metrics as `validationStep`, logged as `test_*`. */
  override testStep(batch: Batch): StepOutput {
    return this.step(batch, false);
  }

  configureOptimizers(): OptimizerConfig {
    if (this.options.configureOptimizers) return this.options.configureOptimizers(this.model);
    const optimizer = this.options.optimizer?.(this.model) ?? new Adam(this.model.trainableVariables(), { lr: this.options.lr ?? 1e-3 });
    return { optimizer };
  }

  override hparams(): Record<string, unknown> {
    return { model: this.model.typeName, parameters: this.model.numParameters(), lr: this.options.lr ?? 1e-3, ...this.options.hparams };
  }
}
