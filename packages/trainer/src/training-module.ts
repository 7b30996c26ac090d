import { tf } from '@kiln/core';
import type { Module } from '@kiln/layers';
import type { Optimizer } from '@kiln/optim';
import type { Batch } from '@kiln/data';

/** What a step returns: the loss to differentiate (training) and scalars to log, averaged per epoch. */
export interface StepOutput {
  loss?: tf.Scalar;
  /** Metric name → scalar; the trainer prefixes the stage (`train_`, `val_`, `test_`). */
  logs: Record<string, tf.Scalar>;
  /** Examples in the batch; epoch averages are weighted by it. */
  batchSize: number;
}

/** A learning-rate scheduler as the trainer drives it (implemented in @kiln/optim). */
export interface SchedulerLike {
  /**
   * Called once per epoch (`epoch`) or per optimizer step (`step`), with the epoch's metrics, or
   * with the monitored value alone when `OptimizerConfig.monitor` names one.
   */
  step(metrics?: Record<string, number> | number): void;
  stateDict?(): Record<string, unknown>;
  loadStateDict?(state: Record<string, unknown>): void;
}

export interface OptimizerConfig {
  optimizer: Optimizer;
  scheduler?: SchedulerLike;
  /** When the scheduler steps. Default `epoch`. */
  interval?: 'epoch' | 'step';
  /**
   * Metric a plateau scheduler watches (e.g. `val_loss`): the scheduler is stepped with its value,
   * and only in epochs that computed it.
   */
  monitor?: string;
}

/**
 * Like a LightningModule: owns a network and says how one step trains, validates and tests it.
 * The Trainer runs the loop, computes gradients, applies the optimizer and fires hooks. A module
 * may also implement any `Callback` hook (without the trainer/module arguments).
 */
export abstract class TrainingModule {
  abstract readonly model: Module;

  /** Forward pass and loss for one training batch; runs inside the gradient tape. */
  abstract trainingStep(batch: Batch, batchIdx: number): StepOutput;

  validationStep?(batch: Batch, batchIdx: number): StepOutput;
  testStep?(batch: Batch, batchIdx: number): StepOutput;

  /** Default prediction: the model's output for the batch. */
  predictStep(batch: Batch, _batchIdx: number): tf.Tensor {
    return this.model.forward(batch.x);
  }

  abstract configureOptimizers(): OptimizerConfig;

  /** Hyper-parameters logged once at the start of `fit`. */
  hparams(): Record<string, unknown> {
    return {};
  }
}
