import { tf } from '@kiln/core';
import type { Module } from '@kiln/layers';
import type { Optimizer } from '@kiln/optim';
import type { Batch } from '@kiln/data';

/** What a step returns: the loss to differentiate (training) and scalars to log, averaged per epoch. */
export interface StepOutput {
  /** The scalar to minimise (training steps must return one). */
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
  /** State to keep in checkpoints. */
  stateDict?(): Record<string, unknown>;
  /** Takes back what `stateDict` returned. */
  loadStateDict?(state: Record<string, unknown>): void;
}

/** What `configureOptimizers` returns. */
export interface OptimizerConfig {
  /** Updates the model's parameters. */
  optimizer: Optimizer;
  /** Adjusts the learning rate as training goes (a schedule or `ReduceLROnPlateau`). */
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
  /** The network being trained. */
  abstract readonly model: Module;

  /** Forward pass and loss for one training batch; runs inside the gradient tape. */
  abstract trainingStep(batch: Batch, batchIdx: number): StepOutput;

  /** Loss and metrics of one validation batch (no gradients); without it, `fit` skips validation. */
  validationStep?(batch: Batch, batchIdx: number): StepOutput;
  /** Loss and metrics of one test batch (no gradients); needed by `trainer.test`. */
  testStep?(batch: Batch, batchIdx: number): StepOutput;

  /** Default prediction: the model's output for the batch. */
  predictStep(batch: Batch, _batchIdx: number): tf.Tensor {
    return this.model.forward(batch.x);
  }

  /** The optimizer (and optionally a learning-rate schedule) for `fit`; called once per run. */
  abstract configureOptimizers(): OptimizerConfig;

  /** Hyper-parameters logged once at the start of `fit`. */
  hparams(): Record<string, unknown> {
    return {};
  }
}
