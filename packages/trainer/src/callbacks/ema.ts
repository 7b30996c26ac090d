import { tf, ConfigError, DataFormatError } from '@kiln/core';
import { checkpointTensors, readCheckpoint } from '../checkpoint.js';
import type { Callback, Stage } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of {@link EMA}. */
export interface EMAOptions {
  /**
   * Weight of the old average in each update, `ema ← decay·ema + (1 − decay)·w` (default 0.999).
   * timm's ModelEmaV2 uses 0.9998–0.9999 for ImageNet-length runs; a short run needs a smaller
   * value, since the average remembers about 1/(1 − decay) steps.
   */
  decay?: number;
  /**
   * Warm-up of the decay, TensorFlow's `ExponentialMovingAverage(num_updates=…)` schedule: the n-th
   * update (n = 0, 1, …) uses `min(decay, (1 + n)/(10 + n))`, so early averages are not dominated by
   * the random initial weights (default false: `decay` from the first update).
   */
  warmup?: boolean;
  /** Average only every N optimizer steps (default 1: every step). */
  everyNSteps?: number;
  /**
   * Validate (and test) with the averaged weights: they are put into the model when a validation
   * or test epoch starts and the raw weights put back when it ends, so training continues from the
   * raw weights (default true).
   */
  useForValidation?: boolean;
  /**
   * Store the average in checkpoints (the checkpoint's tensor section, under `stateKey`), so a
   * resumed run continues the same average (default true). Without it a resumed run starts a new
   * average from the resumed weights.
   */
  saveInCheckpoint?: boolean;
  /** Leave the averaged weights in the model when `fit` ends (default true). */
  applyAtEnd?: boolean;
}

/** The decay the n-th update (0-based) uses: the pure schedule, exported for tests and docs. */
export function emaDecay(decay: number, n: number, warmup: boolean): number {
  return warmup ? Math.min(decay, (1 + n) / (10 + n)) : decay;
}

/**
 * Exponential moving average of the weights (Polyak averaging; timm's `ModelEmaV2`, PyTorch's
 * `AveragedModel` with an EMA `avg_fn`). After each optimizer step every parameter's average moves
 * towards the new weights, `ema ← ema + (1 − d)(w − ema)`, on the device with no host read.
 * Buffers (batch-norm running statistics) are copied, not averaged, as timm does: they are already
 * running averages of the training data, and averaging them again would lag them behind the
 * averaged weights.
 */
export class EMA implements Callback {
  readonly stateKey: string;
  /** Weight of the old average in each update, in [0, 1) (default 0.999; the warm-up may use less early on). */
  readonly decay: number;
  private average: Record<string, tf.Tensor> | null = null;
  private updates = 0;
  private lastStep = 0;
  /** The raw weights while the average is swapped in for evaluation. */
  private raw: Record<string, tf.Tensor> | null = null;

  constructor(private readonly options: EMAOptions = {}) {
    this.decay = options.decay ?? 0.999;
    if (!(this.decay >= 0 && this.decay < 1)) throw new ConfigError('EMA.decay', 'a number in [0, 1)', options.decay);
    const every = options.everyNSteps ?? 1;
    if (!Number.isInteger(every) || every < 1) throw new ConfigError('EMA.everyNSteps', 'a positive integer', options.everyNSteps);
    this.stateKey = `EMA{decay=${this.decay}}`;
  }

  /** Updates applied so far (the `n` of the warm-up schedule). */
  get numUpdates(): number {
    return this.updates;
  }

  /** The averaged parameters and copied buffers, by state-dict name (owned by the callback; null before fit). */
  get averagedWeights(): Readonly<Record<string, tf.Tensor>> | null {
    return this.average;
  }

  setup(_t: Trainer, _m: TrainingModule, stage: Stage): void {
    // A new fit starts a new average; a checkpoint being resumed puts its own back after this.
    if (stage === 'fit') this.reset();
  }

  onFitStart(trainer: Trainer, module: TrainingModule): void {
    this.average ??= this.snapshot(module);
    this.lastStep = trainer.globalStep;
  }

  onTrainBatchEnd(trainer: Trainer, module: TrainingModule): void {
    if (trainer.globalStep === this.lastStep) return; // inside an accumulation window, or a skipped step
    this.lastStep = trainer.globalStep;
    if (trainer.globalStep % (this.options.everyNSteps ?? 1) !== 0) return;
    this.update(module);
  }

  /** One EMA step towards the module's current weights. */
  update(module: TrainingModule): void {
    if (!this.average) {
      this.average = this.snapshot(module);
      return;
    }
    const d = emaDecay(this.decay, this.updates, this.options.warmup ?? false);
    const avg = this.average;
    const params = new Set(module.model.namedParameters().map(([n]) => n));
    const next = tf.tidy(() =>
      Object.fromEntries(
        Object.entries(module.model.stateDict()).map(([k, w]) => {
          if (!params.has(k)) return [k, tf.clone(w)];
          const wf = w.dtype === 'float32' ? w : tf.cast(w, 'float32');
          return [k, tf.add(avg[k], tf.mul(tf.sub(wf, avg[k]), 1 - d))];
        }),
      ),
    );
    tf.dispose(Object.values(avg));
    this.average = next;
    this.updates++;
  }

  onValidationEpochStart(_t: Trainer, module: TrainingModule): void {
    this.swapIn(module);
  }

  /** Before `onValidationEnd`, where ModelCheckpoint may save: the checkpoint's model is always the raw one. */
  onValidationEpochEnd(_t: Trainer, module: TrainingModule): void {
    this.swapOut(module);
  }

  onTestEpochStart(_t: Trainer, module: TrainingModule): void {
    this.swapIn(module);
  }

  onTestEpochEnd(_t: Trainer, module: TrainingModule): void {
    this.swapOut(module);
  }

  onTrainEnd(_t: Trainer, module: TrainingModule): void {
    if ((this.options.applyAtEnd ?? true) && this.average) module.model.loadStateDict(this.average);
  }

  onException(_t: Trainer, module: TrainingModule): void {
    this.swapOut(module);
  }

  private swapIn(module: TrainingModule): void {
    if (!(this.options.useForValidation ?? true) || !this.average || this.raw) return;
    this.raw = this.snapshot(module);
    module.model.loadStateDict(this.average);
  }

  private swapOut(module: TrainingModule): void {
    if (!this.raw) return;
    module.model.loadStateDict(this.raw);
    tf.dispose(Object.values(this.raw));
    this.raw = null;
  }

  /** A copy of the module's parameters and buffers. */
  private snapshot(module: TrainingModule): Record<string, tf.Tensor> {
    return tf.tidy(() => Object.fromEntries(Object.entries(module.model.stateDict()).map(([k, v]) => [k, tf.keep(tf.clone(v))])));
  }

  private reset(): void {
    if (this.average) tf.dispose(Object.values(this.average));
    this.average = null;
    this.updates = 0;
  }

  /**
   * Puts the average a checkpoint holds for an EMA with this `stateKey` (same decay) into `model`:
   * the weights to deploy or evaluate from a run's checkpoint, whose model section has the raw ones.
   */
  loadAverageInto(file: string, model: { loadStateDict(sd: Record<string, tf.Tensor>): unknown }): void {
    const ck = readCheckpoint(file);
    try {
      const avg = ck.callbackTensors[this.stateKey];
      if (!avg || Object.keys(avg).length === 0) {
        const keys = Object.keys(ck.callbackTensors);
        throw new DataFormatError(file, `no EMA average under '${this.stateKey}'`, {
          expected: this.stateKey,
          found: keys.length ? keys.join(', ') : 'no callback tensors',
          hint: 'use an EMA with the decay of the run that wrote it, and saveInCheckpoint: true',
        });
      }
      model.loadStateDict(avg);
    } finally {
      tf.dispose(checkpointTensors(ck));
    }
  }

  /** Frees the average; the model keeps whatever weights it has. */
  dispose(): void {
    this.reset();
  }

  stateDict(): Record<string, unknown> {
    return { updates: this.updates, decay: this.decay };
  }

  loadStateDict(s: Record<string, unknown>): void {
    // Without the average in the checkpoint, the resumed run starts a new one, warm-up included.
    if (this.options.saveInCheckpoint ?? true) this.updates = Number(s.updates ?? 0);
  }

  stateTensors(): Record<string, tf.Tensor> {
    return (this.options.saveInCheckpoint ?? true) && this.average ? this.average : {};
  }

  loadStateTensors(tensors: Record<string, tf.Tensor>): void {
    if (!(this.options.saveInCheckpoint ?? true)) {
      tf.dispose(Object.values(tensors));
      return;
    }
    if (this.average) tf.dispose(Object.values(this.average));
    this.average = tensors;
  }
}
