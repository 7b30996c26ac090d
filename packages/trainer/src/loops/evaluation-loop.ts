import { tf, KilnError } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { StepOutput, TrainingModule } from '../training-module.js';
import { MetricAverager } from '../metric-averager.js';

/**
 * Runs validation or test batches in eval mode (for `validate`, `test`, the sanity check and the
 * validations inside `fit`); returns the epoch means (`val_loss`, `test_acc`, …).
 */
export async function evaluationLoop(trainer: Trainer, module: TrainingModule, loader: DataLoader, stage: 'validate' | 'test', limit: number): Promise<Record<string, number>> {
  const cbs = trainer.callbacks;
  const V = stage === 'validate' ? 'Validation' : 'Test';
  const prefix = stage === 'validate' ? 'val_' : 'test_';
  const stepFn = stage === 'validate' ? module.validationStep : module.testStep;
  if (!stepFn) throw new KilnError('E_NO_STEP', `${module.constructor.name} has no ${stage === 'validate' ? 'validationStep' : 'testStep'}`, { hint: `implement ${stage === 'validate' ? 'validationStep' : 'testStep'}(batch, batchIdx) on the module` });
  module.model.eval();
  await cbs.call(`on${V}Start` as keyof Callback, module, trainer, module);
  await cbs.call(`on${V}EpochStart` as keyof Callback, module, trainer, module);
  const sums = new MetricAverager();
  const it = loader[Symbol.asyncIterator]();
  try {
    for (let i = 0; i < limit; i++) {
      const next = await it.next();
      if (next.done) break;
      const batch = next.value;
      let out: StepOutput | undefined;
      try {
        await cbs.call(`on${V}BatchStart` as keyof Callback, module, trainer, module, batch, i);
        out = tf.tidy(() => {
          const o = stepFn.call(module, batch, i);
          return { ...o, logs: Object.fromEntries(Object.entries(o.logs).map(([k, v]) => [k, tf.keep(v)])) };
        });
        await sums.add(out, prefix);
        await cbs.call(`on${V}BatchEnd` as keyof Callback, module, trainer, module, out, batch, i);
      } finally {
        if (out) tf.dispose(Object.values(out.logs));
        tf.dispose([batch.x, batch.y]);
      }
    }
  } finally {
    await it.return?.();
  }
  const means = sums.means();
  if (!trainer.sanityChecking) {
    Object.assign(trainer.callbackMetrics, means);
    // Before onValidationEnd, so callbacks acting on a mid-epoch validation see its values as current.
    for (const k of Object.keys(means)) trainer.freshMetrics.add(k);
  }
  await cbs.call(`on${V}EpochEnd` as keyof Callback, module, trainer, module);
  await cbs.call(`on${V}End` as keyof Callback, module, trainer, module);
  return means;
}
