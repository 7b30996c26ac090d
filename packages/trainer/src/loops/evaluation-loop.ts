import { tf, KilnError } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { StepOutput, TrainingModule } from '../training-module.js';
import { ResultCollection } from '../result-collection.js';
import { inStep } from './optimization.js';

/**
 * Runs validation or test batches in eval mode (for `validate`, `test`, the sanity check and the
 * validations inside `fit`); returns the epoch means (`val_loss`, `test_acc`, …).
 */
export async function evaluationLoop(trainer: Trainer, module: TrainingModule, loader: DataLoader, stage: 'validate' | 'test', limit: number): Promise<Record<string, number>> {
  const cbs = trainer.callbacks;
  const V = stage === 'validate' ? 'Validation' : 'Test';
  const prefix = stage === 'validate' ? 'val_' : 'test_';
  const stepFn = stage === 'validate' ? module.validationStep : module.testStep;
  const step = stage === 'validate' ? 'validationStep' : 'testStep';
  if (!stepFn) throw new KilnError('E_NO_STEP', `${module.constructor.name} has no ${stage === 'validate' ? 'validationStep' : 'testStep'}`, { hint: `implement ${stage === 'validate' ? 'validationStep' : 'testStep'}(batch, batchIdx) on the module` });
  module.model.eval();
  // Each run reduces into its own results; the trainer routes `module.log` calls here meanwhile.
  const results = new ResultCollection();
  const outer = trainer.evalResults;
  trainer.evalResults = results;
  try {
    await cbs.call(`on${V}Start` as keyof Callback, module, trainer, module);
    await cbs.call(`on${V}EpochStart` as keyof Callback, module, trainer, module);
    const it = loader[Symbol.asyncIterator]();
    try {
      for (let i = 0; i < limit; i++) {
        const next = await it.next();
        if (next.done) break;
        const batch = next.value;
        try {
          await cbs.call(`on${V}BatchStart` as keyof Callback, module, trainer, module, batch, i);
          const out: StepOutput = tf.tidy(() => {
            const o = inStep(trainer, () => stepFn.call(module, batch, i), step);
            return { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(v)])) };
          });
          results.adopt(prefix, out.logs, false);
          await cbs.call(`on${V}BatchEnd` as keyof Callback, module, trainer, module, out, batch, i);
          // Device work only: the batch's values join the epoch's reductions, weighted by its size.
          results.commit(out.batchSize);
        } finally {
          tf.dispose([batch.x, batch.y]);
        }
      }
    } finally {
      await it.return?.();
    }
    let means = await results.epochValues();
    publish(trainer, means);
    const commits = results.commits;
    await cbs.call(`on${V}EpochEnd` as keyof Callback, module, trainer, module);
    // What on…EpochEnd logged is current from on…End on.
    if (results.commits !== commits) {
      means = await results.epochValues();
      publish(trainer, means);
    }
    await cbs.call(`on${V}End` as keyof Callback, module, trainer, module);
    return means;
  } finally {
    trainer.evalResults = outer;
    results.dispose();
  }
}

/** Puts an evaluation's values in `callbackMetrics` as current (not during the sanity check, whose values are discarded). */
function publish(trainer: Trainer, means: Record<string, number>): void {
  if (trainer.sanityChecking) return;
  Object.assign(trainer.callbackMetrics, means);
  // Before onValidationEnd, so callbacks acting on a mid-epoch validation see its values as current.
  for (const k of Object.keys(means)) trainer.freshMetrics.add(k);
}
