import { tf } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Runs `predictStep` over the loader in eval mode; returns one output per batch (the caller owns them). */
export async function predictionLoop(trainer: Trainer, module: TrainingModule, loader: DataLoader): Promise<tf.Tensor[]> {
  const cbs = trainer.callbacks;
  module.model.eval();
  await cbs.call('onPredictStart', module, trainer, module);
  await cbs.call('onPredictEpochStart', module, trainer, module);
  const outs: tf.Tensor[] = [];
  let i = 0;
  // A fastDevRun predicts its n batches only, like the other loops.
  const limit = trainer.devBatches > 0 ? Math.min(loader.length, trainer.devBatches) : loader.length;
  for await (const batch of loader) {
    if (i >= limit) {
      tf.dispose([batch.x, batch.y]);
      break;
    }
    try {
      await cbs.call('onPredictBatchStart', module, trainer, module, batch, i);
      const y = tf.tidy(() => module.predictStep(batch, i));
      outs.push(y);
      await cbs.call('onPredictBatchEnd', module, trainer, module, y, batch, i);
    } finally {
      tf.dispose([batch.x, batch.y]);
    }
    i++;
  }
  await cbs.call('onPredictEpochEnd', module, trainer, module);
  await cbs.call('onPredictEnd', module, trainer, module);
  return outs;
}
