import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader } from '@kiln/data';
import { Trainer, type Callback } from '../src/index.js';
import { CALLBACK_HOOKS as HOOKS, loaders, syntheticDataset, tinyModule } from './helpers.js';


/** Records every hook it receives, with the batch index for batch hooks. */
function recorder(log: string[], failAt?: string): Callback {
  const cb: Record<string, unknown> = {};
  for (const h of HOOKS) {
    cb[h] = (...args: unknown[]) => {
      const idx = h.includes('Batch') ? `(${args[args.length - 1]})` : h === 'setup' || h === 'teardown' ? `(${args[2]})` : '';
      log.push(h + idx);
      if (h === failAt) throw new Error(`boom in ${h}`);
    };
  }
  return cb as Callback;
}

const trainBatch = (i: number) => [`onTrainBatchStart(${i})`, 'onBeforeZeroGrad', 'onBeforeBackward', 'onAfterBackward', 'onBeforeOptimizerStep', `onTrainBatchEnd(${i})`];
const valBlock = (n: number) => ['onValidationStart', 'onValidationEpochStart', ...Array.from({ length: n }, (_, i) => [`onValidationBatchStart(${i})`, `onValidationBatchEnd(${i})`]).flat(), 'onValidationEpochEnd', 'onValidationEnd'];

describe('hook order', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('fit: sanity check, 2 epochs of 2 batches with validation, in the documented order', async () => {
    const log: string[] = [];
    const module = tinyModule();
    const trainer = new Trainer({ maxEpochs: 2, numSanityValSteps: 1 }, [recorder(log)]);
    const { train, val } = loaders(32, 32, 16);
    await trainer.fit(module, train, val);
    const epoch = ['onTrainEpochStart', ...trainBatch(0), ...trainBatch(1), ...valBlock(2), 'onTrainEpochEnd'];
    expect(log).toEqual([
      'setup(fit)',
      'onFitStart',
      'onSanityCheckStart',
      ...valBlock(1),
      'onSanityCheckEnd',
      'onTrainStart',
      ...epoch,
      ...epoch,
      'onTrainEnd',
      'onFitEnd',
      'teardown(fit)',
    ]);
    trainer.optimizerConfig!.optimizer.dispose();
  });

  it('callbacks fire before the module hook of the same name, in registration order', async () => {
    const log: string[] = [];
    const module = tinyModule();
    Object.assign(module, { onTrainEpochStart: () => log.push('module') });
    const a: Callback = { onTrainEpochStart: () => void log.push('a') };
    const b: Callback = { onTrainEpochStart: () => void log.push('b') };
    const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, limitTrainBatches: 1 }, [a, b]);
    await trainer.fit(module, loaders().train);
    expect(log).toEqual(['a', 'b', 'module']);
    trainer.optimizerConfig!.optimizer.dispose();
  });

  it('validate, test and predict', async () => {
    const module = tinyModule();
    const loader = () => new DataLoader(syntheticDataset(32, 3), { batchSize: 16 });
    for (const [stage, V] of [['validate', 'Validation'], ['test', 'Test']] as const) {
      const log: string[] = [];
      const m = await new Trainer({}, [recorder(log)])[stage](module, loader());
      expect(log).toEqual([`setup(${stage})`, `on${V}Start`, `on${V}EpochStart`, `on${V}BatchStart(0)`, `on${V}BatchEnd(0)`, `on${V}BatchStart(1)`, `on${V}BatchEnd(1)`, `on${V}EpochEnd`, `on${V}End`, `teardown(${stage})`]);
      expect(Object.keys(m).sort()).toEqual(stage === 'validate' ? ['val_acc', 'val_loss'] : ['test_acc', 'test_loss']);
    }
    const log: string[] = [];
    const outs = await new Trainer({}, [recorder(log)]).predict(module, loader());
    expect(outs.map((o) => o.shape)).toEqual([[16, 3], [16, 3]]);
    tf.dispose(outs);
    expect(log).toEqual(['setup(predict)', 'onPredictStart', 'onPredictEpochStart', 'onPredictBatchStart(0)', 'onPredictBatchEnd(0)', 'onPredictBatchStart(1)', 'onPredictBatchEnd(1)', 'onPredictEpochEnd', 'onPredictEnd', 'teardown(predict)']);
  });

  it('onException fires once with the error, then teardown, and the error propagates', async () => {
    const log: string[] = [];
    const module = tinyModule();
    const trainer = new Trainer({ maxEpochs: 2, numSanityValSteps: 0 }, [recorder(log, 'onTrainBatchEnd')]);
    const before = tf.memory().numTensors;
    await expect(trainer.fit(module, loaders(32).train)).rejects.toThrow(/boom in onTrainBatchEnd/);
    expect(log).toEqual(['setup(fit)', 'onFitStart', 'onTrainStart', 'onTrainEpochStart', ...trainBatch(0), 'onException', 'teardown(fit)']);
    trainer.optimizerConfig!.optimizer.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
  });

  it('gradient accumulation: optimizer hooks once per window', async () => {
    const log: string[] = [];
    const module = tinyModule();
    const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, accumulateGradBatches: 2 }, [recorder(log)]);
    await trainer.fit(module, loaders(64).train);
    expect(log.filter((h) => h === 'onBeforeOptimizerStep')).toHaveLength(2);
    expect(log.filter((h) => h === 'onAfterBackward')).toHaveLength(4);
    expect(trainer.globalStep).toBe(2);
    trainer.optimizerConfig!.optimizer.dispose();
  });
});
