import { tf, ShapeMismatchError } from '@kiln/core';
import { huberLoss, l1Loss, mseLoss, type Module } from '@kiln/layers';
import type { Batch } from '@kiln/data';
import { TrainingModule, type OptimizerConfig, type StepOutput } from './training-module.js';
import { optimizerConfigFrom, type ModuleOptimizerOptions } from './optimizer-options.js';

export interface RegressionModuleOptions extends ModuleOptimizerOptions {
  /**
   * The loss between predictions and float targets: `mse` (default), `l1` (mean absolute error,
   * robust to outliers) or `huber` (quadratic within `delta` of the target, linear beyond).
   */
  loss?: 'mse' | 'l1' | 'huber';
  /** The Huber loss's threshold δ (default 1). */
  delta?: number;
}

/**
 * Wraps any network that predicts real values (one per example, or several) with a regression
 * loss, and logs `loss`, `mae` and `mse` for each stage (`train_mae`, `val_mse`, …). Targets are
 * float32 (`ArrayDataset` with a Float32Array `y`, a CSV read with `targetDtype: 'float32'`); a
 * prediction [B, 1] meets a target [B] as the same values.
 */
export class RegressionModule extends TrainingModule {
  constructor(
    readonly model: Module,
    private readonly options: RegressionModuleOptions = {},
  ) {
    super();
  }

  private step(batch: Batch): StepOutput {
    const pred = this.model.forward(batch.x);
    const target = matchTarget(pred, batch.y);
    const kind = this.options.loss ?? 'mse';
    const loss = (kind === 'l1' ? l1Loss(pred, target) : kind === 'huber' ? huberLoss(pred, target, { delta: this.options.delta }) : mseLoss(pred, target)) as tf.Scalar;
    // The metrics are separate tensors even when one equals the loss: the trainer keeps and frees each log.
    const logs: Record<string, tf.Scalar> = { loss, mae: l1Loss(pred, target) as tf.Scalar, mse: mseLoss(pred, target) as tf.Scalar };
    return { loss, logs, batchSize: pred.shape[0] ?? 1 };
  }

  trainingStep(batch: Batch): StepOutput {
    return this.step(batch);
  }

  /** The configured loss, `mae` and `mse` of one batch, logged as `val_*`. */
  override validationStep(batch: Batch): StepOutput {
    return this.step(batch);
  }

  /** The same loss and metrics as `validationStep`, logged as `test_*`. */
  override testStep(batch: Batch): StepOutput {
    return this.step(batch);
  }

  configureOptimizers(): OptimizerConfig {
    return optimizerConfigFrom(this.model, this.options);
  }

  override hparams(): Record<string, unknown> {
    return { model: this.model.typeName, parameters: this.model.numParameters(), lr: this.options.lr ?? 1e-3, loss: this.options.loss ?? 'mse', ...(this.options.loss === 'huber' ? { delta: this.options.delta ?? 1 } : {}), ...this.options.hparams };
  }
}

/**
 * The target as float32 in the prediction's shape: a [B] target for [B, 1] predictions (one output
 * per example) is the same values. Any other difference is a shape error naming both shapes.
 */
function matchTarget(pred: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const t = y.dtype === 'float32' ? y : tf.cast(y, 'float32');
  if (tf.util.arraysEqual(pred.shape, t.shape)) return t;
  if (pred.size === t.size && pred.shape[0] === t.shape[0]) return tf.reshape(t, pred.shape);
  throw new ShapeMismatchError('RegressionModule(target)', `[${pred.shape.join(', ')}] (the prediction's shape) or the same values per example`, t.shape, 'make the model output one value per target value');
}
