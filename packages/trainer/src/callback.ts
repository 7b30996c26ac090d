import type { tf } from '@kiln/core';
import type { Trainer } from './trainer.js';
import type { TrainingModule, StepOutput } from './training-module.js';
import type { Batch } from '@kiln/data';

export type Stage = 'fit' | 'validate' | 'test' | 'predict';

/**
 * The hook contract. Every method is optional; implement the ones you need. Callback hooks fire
 * before the module's hook of the same name, in the order documented in docs/hooks.md (Lightning
 * 2.x's order). Batch hooks also get the step's outputs, the batch and its index.
 *
 * A callback that keeps state across epochs returns it from `stateDict` and takes it back in
 * `loadStateDict`; the Trainer stores it in checkpoints under `stateKey` (default: the class name),
 * so a resumed run continues where it stopped.
 */
export interface Callback {
  /** Key under which `stateDict` is saved; make it unique when two instances coexist. */
  readonly stateKey?: string;

  setup?(trainer: Trainer, module: TrainingModule, stage: Stage): void | Promise<void>;
  teardown?(trainer: Trainer, module: TrainingModule, stage: Stage): void | Promise<void>;

  onFitStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onFitEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onSanityCheckStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onSanityCheckEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;

  onTrainStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTrainEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTrainEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** After the epoch's validation; `trainer.callbackMetrics` holds the epoch's train and val metrics. */
  onTrainEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTrainBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  onTrainBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: StepOutput, batch: Batch, batchIdx: number): void | Promise<void>;

  /** Runs synchronously inside the gradient tape, after the forward pass. */
  onBeforeZeroGrad?(trainer: Trainer, module: TrainingModule): void;
  /** Runs synchronously inside the gradient tape, just before backpropagation; `loss` is the scalar being differentiated. */
  onBeforeBackward?(trainer: Trainer, module: TrainingModule, loss: tf.Scalar): void;
  /** Gradients are computed, not yet clipped or applied. */
  onAfterBackward?(trainer: Trainer, module: TrainingModule, grads: tf.NamedTensorMap): void | Promise<void>;
  onBeforeOptimizerStep?(trainer: Trainer, module: TrainingModule, grads: tf.NamedTensorMap): void | Promise<void>;

  onValidationStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onValidationEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onValidationEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onValidationEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onValidationBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  onValidationBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: StepOutput, batch: Batch, batchIdx: number): void | Promise<void>;

  onTestStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTestEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTestEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTestEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onTestBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  onTestBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: StepOutput, batch: Batch, batchIdx: number): void | Promise<void>;

  onPredictStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onPredictEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onPredictEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onPredictEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  onPredictBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  onPredictBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: tf.Tensor, batch: Batch, batchIdx: number): void | Promise<void>;

  /** Any error that interrupts a run; the error is re-thrown after every callback saw it. */
  onException?(trainer: Trainer, module: TrainingModule, error: unknown): void | Promise<void>;
  /** Add to or read the checkpoint being written. */
  onSaveCheckpoint?(trainer: Trainer, module: TrainingModule, checkpoint: Record<string, unknown>): void | Promise<void>;
  onLoadCheckpoint?(trainer: Trainer, module: TrainingModule, checkpoint: Record<string, unknown>): void | Promise<void>;

  stateDict?(): Record<string, unknown>;
  loadStateDict?(state: Record<string, unknown>): void;
  /**
   * Tensors the callback's state holds (EarlyStopping's best weights, an average of weights),
   * stored in the checkpoint's tensor section beside the model. Read, not taken: the callback keeps them.
   */
  stateTensors?(): Record<string, tf.Tensor>;
  /** The tensors `stateTensors` returned, from a checkpoint; the callback takes ownership. */
  loadStateTensors?(tensors: Record<string, tf.Tensor>): void;
}

/** Names of hooks that take only (trainer, module). */
export type SimpleHook = {
  [K in keyof Callback]-?: NonNullable<Callback[K]> extends (t: Trainer, m: TrainingModule) => unknown
    ? Parameters<NonNullable<Callback[K]>>['length'] extends 2
      ? K
      : never
    : never;
}[keyof Callback];
