import { tf, ConfigError, KilnError } from '@kiln/core';
import { GradientAccumulator } from '@kiln/optim';
import type { Trainer } from '../trainer.js';
import type { OptimizerConfig, StepOutput, TrainingModule } from '../training-module.js';

/**
 * One training step: forward and backward in one `tf.variableGrads` call (tfjs records and
 * differentiates in a single tape), accumulation, clipping, the optimizer step and step-interval
 * schedules. `onBeforeZeroGrad` and `onBeforeBackward` fire synchronously inside the tape, after
 * the forward pass, because tfjs offers no point between recording and differentiating.
 * Accumulation is `@kiln/optim`'s GradientAccumulator: the step applies the mean of the gradients
 * of the batches in its window, also for a last window cut short by the epoch's end. Step-interval
 * schedules are stepped by the epoch loop, once the step's logged values are committed.
 */
export class StepRunner {
  private accumulator: GradientAccumulator | null = null;
  /**
   * Whether the last `run` dropped its update (a callback set `trainer.skipOptimizerStep`, as
   * TerminateOnNaN's `'skip'` does): that batch's values are step values only, kept out of the
   * epoch's reductions, so one non-finite batch does not make the epoch's mean NaN.
   */
  lastSkipped = false;

  constructor(
    private readonly trainer: Trainer,
    private readonly module: TrainingModule,
    private readonly cfg: OptimizerConfig,
    private readonly limit: number,
  ) {}

  async run(batch: Parameters<TrainingModule['trainingStep']>[0], batchIdx: number): Promise<StepOutput> {
    this.lastSkipped = false;
    if (!this.module.automaticOptimization) return this.runManual(batch, batchIdx);
    const { trainer, module, cfg } = this;
    const cbs = trainer.callbacks;
    const accumulate = trainer.accumulateGradBatches;
    const pending = this.accumulator?.count ?? 0;
    let kept: StepOutput | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const o = inStep(trainer, () => module.trainingStep(batch, batchIdx));
      if (o instanceof Promise) throw new KilnError('E_ASYNC_STEP', `${module.constructor.name}.trainingStep returned a promise`, { hint: 'an async trainingStep needs automaticOptimization = false (the automatic loop records it under the gradient tape, which cannot wait)' });
      if (!o.loss) throw new KilnError('E_NO_LOSS', 'trainingStep returned no loss', { where: `${module.constructor.name}.trainingStep`, hint: 'return { loss, logs, batchSize }' });
      kept = { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(tf.clone(v))])) };
      const loss = withRegularization(module, o.loss);
      cbs.callSync('onBeforeZeroGrad', module, trainer, module);
      if (pending === 0) cfg.optimizer.zeroGrad();
      cbs.callSync('onBeforeBackward', module, trainer, module, loss);
      return loss;
    }, module.model.trainableVariables());
    value.dispose();
    try {
      await cbs.call('onAfterBackward', module, trainer, module, grads);
    } catch (e) {
      tf.dispose(Object.values(grads));
      tf.dispose(Object.values(kept!.logs));
      trainer.skipOptimizerStep = false;
      throw e;
    }
    if (trainer.skipOptimizerStep) {
      trainer.skipOptimizerStep = false;
      this.lastSkipped = true;
      tf.dispose(Object.values(grads));
      return kept!;
    }
    const windowEnds = pending + 1 >= accumulate || batchIdx + 1 === this.limit;
    let acc: tf.NamedTensorMap;
    if (pending === 0 && windowEnds) {
      // No accumulation in progress: the batch's gradients are the step's, without a copy.
      acc = grads;
    } else {
      this.accumulator ??= new GradientAccumulator({ steps: accumulate });
      this.accumulator.add(grads);
      tf.dispose(Object.values(grads));
      trainer.atOptimizerStepBoundary = false;
      if (!windowEnds) return kept!;
      acc = this.accumulator.take();
    }
    try {
      await cbs.call('onBeforeOptimizerStep', module, trainer, module, acc);
      const clipped = module.configureGradientClipping(acc, trainer.options.gradientClipVal, trainer.options.gradientClipAlgorithm);
      try {
        module.optimizerStep(cfg.optimizer, clipped);
      } finally {
        if (clipped !== acc) tf.dispose(Object.values(clipped));
      }
    } finally {
      tf.dispose(Object.values(acc));
    }
    trainer.globalStep++;
    trainer.atOptimizerStepBoundary = true;
    return kept!;
  }

  /**
   * Manual optimization: the module's (possibly async) `trainingStep` computes gradients and steps
   * its optimizers itself. It runs in an engine scope, so its temporaries are freed like a tidy's;
   * only the logged scalars are kept. Nothing else creates tensors while it runs: the loader reads
   * ahead as plain arrays and makes a batch's tensors only when it hands the batch out.
   */
  private async runManual(batch: Parameters<TrainingModule['trainingStep']>[0], batchIdx: number): Promise<StepOutput> {
    const { trainer, module } = this;
    if (trainer.accumulateGradBatches > 1) throw new ConfigError('Trainer.accumulateGradBatches', '1 with manual optimization (accumulate in trainingStep)', trainer.accumulateGradBatches);
    let out: StepOutput;
    tf.engine().startScope();
    try {
      const o = await inStep(trainer, () => module.trainingStep(batch, batchIdx));
      out = { ...o, loss: undefined, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(tf.clone(v))])) };
    } finally {
      tf.engine().endScope();
      trainer.skipOptimizerStep = false;
    }
    trainer.globalStep++;
    trainer.atOptimizerStepBoundary = true;
    return out;
  }

  dispose(): void {
    this.accumulator?.reset();
    this.accumulator = null;
    this.trainer.atOptimizerStepBoundary = true;
  }
}

/**
 * The loss the optimizer minimises: the step's loss plus every trainable parameter's regularizer
 * penalty (the loss itself when there are none). The training step and the tuner both differentiate
 * this, so a tuned learning rate or batch size is found on the objective that is trained.
 */
export function withRegularization(module: TrainingModule, loss: tf.Scalar): tf.Scalar {
  let penalty: tf.Scalar | null = null;
  for (const p of module.model.parameters()) {
    if (!p.regularizer || !p.trainable) continue;
    const pen = p.regularizer.penalty(p.variable);
    penalty = penalty ? (tf.add(penalty, pen) as tf.Scalar) : pen;
  }
  return penalty ? (tf.add(loss, penalty) as tf.Scalar) : loss;
}

/**
 * Runs a step function with its name (`trainingStep`, `validationStep`, `testStep`) on the
 * dispatcher's `running` stack, so a `module.log` inside it knows where it is; also while an
 * asynchronous step awaits.
 */
export function inStep<T>(trainer: Trainer, f: () => T, name = 'trainingStep'): T {
  const running = trainer.callbacks.running;
  running.push(name);
  let out: T;
  try {
    out = f();
  } catch (e) {
    running.pop();
    throw e;
  }
  if (out instanceof Promise) return out.finally(() => running.pop()) as T;
  running.pop();
  return out;
}
