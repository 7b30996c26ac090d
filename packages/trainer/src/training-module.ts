import { tf, ConfigError } from '@kiln/core';
import type { Module } from '@kiln/layers';
import type { Optimizer } from '@kiln/optim';
import type { AnyBatch } from '@kiln/data';

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
  /** Called once per epoch (`epoch`) or per optimizer step (`step`). */
  step(metrics?: Record<string, number>): void;
  stateDict?(): Record<string, unknown>;
  loadStateDict?(state: Record<string, unknown>): void;
}

export interface OptimizerConfig {
  optimizer: Optimizer;
  scheduler?: SchedulerLike;
  /** When the scheduler steps. Default `epoch`. */
  interval?: 'epoch' | 'step';
  /** Metric a plateau scheduler watches (e.g. `val_loss`). */
  monitor?: string;
}

/**
 * Like a LightningModule: owns a network and says how one step trains, validates and tests it.
 * The Trainer runs the loop, computes gradients, applies the optimizer and fires hooks. A module
 * may also implement any `Callback` hook (without the trainer/module arguments).
 */
export abstract class TrainingModule {
  abstract readonly model: Module;

  /**
   * Forward pass and loss for one training batch; runs inside the gradient tape. A module declares
   * the batch it expects (`Batch` for one input and one target tensor, `Batch<{ image; mask }>` for
   * records): the loader's examples decide what arrives.
   */
  abstract trainingStep(batch: AnyBatch, batchIdx: number): StepOutput;

  validationStep?(batch: AnyBatch, batchIdx: number): StepOutput;
  testStep?(batch: AnyBatch, batchIdx: number): StepOutput;

  /** Default prediction: the model's output for the batch's input (override it for record inputs). */
  predictStep(batch: AnyBatch, _batchIdx: number): tf.Tensor {
    // Duck-typed rather than instanceof, so a tensor from another bundle of tfjs (CJS beside ESM) still counts.
    const x = batch.x as Partial<tf.Tensor>;
    if (!(Array.isArray(x.shape) && typeof x.dtype === 'string' && typeof x.dataSync === 'function')) {
      throw new ConfigError(`${this.constructor.name}.predictStep`, 'a batch whose x is one tensor', `a record with keys ${Object.keys(batch.x).join(', ')}`, 'override predictStep to feed record inputs to the model');
    }
    return this.model.forward(batch.x as tf.Tensor);
  }

  abstract configureOptimizers(): OptimizerConfig;

  /** Hyper-parameters logged once at the start of `fit`. */
  hparams(): Record<string, unknown> {
    return {};
  }
}
