import type { tf } from '@kiln/core';
import type { Trainer } from './trainer.js';
import type { TrainingModule, StepOutput } from './training-module.js';
import type { Batch } from '@kiln/data';

/** Which trainer method is running: `fit`, `validate`, `test` or `predict`. */
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

  /**
   * True for a callback that decides on logged metrics at epoch ends (ModelCheckpoint,
   * EarlyStopping, ReduceLROnPlateau): its `onTrainEpochEnd` runs after the module's, so it sees
   * what the module's `onTrainEpochEnd` logs (Lightning 2.x's "monitoring callbacks").
   */
  readonly monitorsMetrics?: boolean;

  /**
   * Says whether this callback reads the step's logged values (`trainer.lastTrainMetrics`) in this
   * batch's `onTrainBatchEnd`. Logged values stay on the device; the trainer reads them to the host
   * (one read) only in steps where a logger or a callback wants them. A callback that reads
   * `lastTrainMetrics` without declaring it still gets the values, through a synchronous read,
   * which backends without synchronous readback (WebGPU in Node) refuse.
   */
  needsStepMetrics?(trainer: Trainer, batchIdx: number): boolean;

  /** First hook of every `fit`/`validate`/`test`/`predict` call, before any checkpoint is restored. */
  setup?(trainer: Trainer, module: TrainingModule, stage: Stage): void | Promise<void>;
  /** Last hook of every run, also after an exception. */
  teardown?(trainer: Trainer, module: TrainingModule, stage: Stage): void | Promise<void>;

  /** `fit` begins (after a resumed checkpoint was loaded). */
  onFitStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** `fit` finished, after `onTrainEnd`. */
  onFitEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the sanity-check validation batches (`numSanityValSteps`) that precede training. */
  onSanityCheckStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** After the sanity-check validation batches; their metrics are discarded. */
  onSanityCheckEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;

  /** Training loop begins, after the sanity check. */
  onTrainStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Training loop ended (max epochs or steps reached, or `trainer.shouldStop`). */
  onTrainEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** A training epoch begins; `trainer.currentEpoch` is 0-based. */
  onTrainEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** After the epoch's validation; `trainer.callbackMetrics` holds the epoch's train and val metrics. */
  onTrainEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the training step of batch `batchIdx`. */
  onTrainBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  /** After the optimizer step of batch `batchIdx`; `trainer.lastTrainMetrics` holds the step's logged values. */
  onTrainBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: StepOutput, batch: Batch, batchIdx: number): void | Promise<void>;

  /** Runs synchronously inside the gradient tape, after the forward pass. */
  onBeforeZeroGrad?(trainer: Trainer, module: TrainingModule): void;
  /** Runs synchronously inside the gradient tape, just before backpropagation; `loss` is the scalar being differentiated. */
  onBeforeBackward?(trainer: Trainer, module: TrainingModule, loss: tf.Scalar): void;
  /** Gradients are computed, not yet clipped or applied. */
  onAfterBackward?(trainer: Trainer, module: TrainingModule, grads: tf.NamedTensorMap): void | Promise<void>;
  /** Before clipping and the optimizer step; `grads` may be read, not replaced. */
  onBeforeOptimizerStep?(trainer: Trainer, module: TrainingModule, grads: tf.NamedTensorMap): void | Promise<void>;

  /** A validation run begins (end of epoch, `valCheckInterval`, or `trainer.validate`). */
  onValidationStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** A validation run ended; `trainer.callbackMetrics` holds its `val_*` metrics. */
  onValidationEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the first validation batch. */
  onValidationEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** After the last validation batch, once the epoch's validation metrics are reduced. */
  onValidationEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the validation step of batch `batchIdx`. */
  onValidationBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  /** After the validation step of batch `batchIdx`. */
  onValidationBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: StepOutput, batch: Batch, batchIdx: number): void | Promise<void>;

  /** `trainer.test` begins. */
  onTestStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** `trainer.test` ended; `trainer.callbackMetrics` holds the `test_*` metrics. */
  onTestEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the first test batch. */
  onTestEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** After the last test batch, once the test metrics are reduced. */
  onTestEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the test step of batch `batchIdx`. */
  onTestBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  /** After the test step of batch `batchIdx`. */
  onTestBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: StepOutput, batch: Batch, batchIdx: number): void | Promise<void>;

  /** `trainer.predict` begins. */
  onPredictStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** `trainer.predict` ended. */
  onPredictEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the first prediction batch. */
  onPredictEpochStart?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** After the last prediction batch. */
  onPredictEpochEnd?(trainer: Trainer, module: TrainingModule): void | Promise<void>;
  /** Before the prediction step of batch `batchIdx`. */
  onPredictBatchStart?(trainer: Trainer, module: TrainingModule, batch: Batch, batchIdx: number): void | Promise<void>;
  /** After the prediction step of batch `batchIdx`; `outputs` is the step's prediction. */
  onPredictBatchEnd?(trainer: Trainer, module: TrainingModule, outputs: tf.Tensor, batch: Batch, batchIdx: number): void | Promise<void>;

  /** Any error that interrupts a run; the error is re-thrown after every callback saw it. */
  onException?(trainer: Trainer, module: TrainingModule, error: unknown): void | Promise<void>;
  /** Add to or read the checkpoint being written. */
  onSaveCheckpoint?(trainer: Trainer, module: TrainingModule, checkpoint: Record<string, unknown>): void | Promise<void>;
  /** A checkpoint is being restored (resume); read what `onSaveCheckpoint` added. */
  onLoadCheckpoint?(trainer: Trainer, module: TrainingModule, checkpoint: Record<string, unknown>): void | Promise<void>;

  /** JSON-serialisable state to keep in checkpoints under `stateKey`. */
  stateDict?(): Record<string, unknown>;
  /** Takes back what `stateDict` returned, when a run resumes. */
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
