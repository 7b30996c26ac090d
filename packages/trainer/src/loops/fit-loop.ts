import { ConfigError, defaultRng, manualSeed } from '@kiln/core';
import { DataLoader, subsetDataset } from '@kiln/data';
import type { Trainer } from '../trainer.js';
import type { OptimizerConfig, TrainingModule } from '../training-module.js';
import { evaluationLoop } from './evaluation-loop.js';
import { TrainingEpochLoop } from './training-epoch-loop.js';

/**
 * `fit` from start to end (Lightning's fit loop): set-up, the resume entry (through the trainer's
 * checkpoint connector), the sanity check, epochs until a stop condition holds, and the end or
 * exception hooks. Each epoch is the `TrainingEpochLoop`'s.
 */
export class FitLoop {
  /** Runs the batches of one epoch. */
  readonly epochLoop: TrainingEpochLoop;
  /** The training loader of the running fit (after `overfitBatches`), whose position checkpoints save. */
  trainLoader?: DataLoader;

  constructor(private readonly trainer: Trainer) {
    this.epochLoop = new TrainingEpochLoop(trainer);
  }

  async run(module: TrainingModule, train: DataLoader, val: DataLoader | undefined, ckptPath: string | undefined): Promise<void> {
    const trainer = this.trainer;
    trainer.stage = 'fit';
    trainer.shouldStop = false;
    trainer.currentEpoch = 0;
    trainer.globalStep = 0;
    trainer.callbackMetrics = {};
    trainer.module = module;
    module.trainer = trainer;
    trainer.accumulateGradBatches = trainer.options.accumulateGradBatches;
    trainer.stepOverride = null;
    this.epochLoop.reset();
    if (trainer.options.overfitBatches > 0) {
      // A count from 1 up (1 = one batch, as in Lightning), a fraction below 1.
      const ov = trainer.options.overfitBatches;
      const n = ov >= 1 ? Math.min(train.length, Math.floor(ov)) : Math.max(1, Math.floor(train.length * ov));
      const first = Int32Array.from({ length: Math.min(train.dataset.length, n * train.batchSize) }, (_, i) => i);
      const subset = subsetDataset(train.dataset, first);
      const opts = { batchSize: train.batchSize, exampleShape: train.exampleShape, schema: train.schema };
      train = new DataLoader(subset, opts);
      val = new DataLoader(subset, opts);
    }
    this.trainLoader = train;
    trainer.validationEnabled = !!val;
    if (trainer.options.seed !== undefined) {
      manualSeed(trainer.options.seed);
      // A loader built without its own seed draws its order from the run's seed (a resume then
      // restores the loader's saved generator over this).
      if (!train.seeded) train.manualSeed(trainer.options.seed);
    }
    const cbs = trainer.callbacks;
    try {
      await cbs.call('setup', module, trainer, module, 'fit');
      trainer.optimizerConfigs = configureOptimizers(module);
      trainer.optimizerConfig = trainer.optimizerConfigs[0];
      // The generator is restored after the sanity check, so whatever that check draws cannot shift it.
      const rng = ckptPath ? await trainer.checkpointConnector.restore(ckptPath, module, train) : undefined;
      // Loggers forget what the interrupted run logged after the checkpoint, so the logs read as one run.
      if (ckptPath) for (const l of trainer.loggers) await l.onResume?.(trainer.globalStep, this.epochLoop.resumingAtBatch > 0);
      await cbs.call('onFitStart', module, trainer, module);
      for (const l of trainer.loggers) await l.logHyperparams?.(module.hparams());
      if (val && trainer.options.numSanityValSteps > 0) {
        trainer.sanityChecking = true;
        await cbs.call('onSanityCheckStart', module, trainer, module);
        await evaluationLoop(trainer, module, val, 'validate', Math.min(val.length, trainer.options.numSanityValSteps));
        await cbs.call('onSanityCheckEnd', module, trainer, module);
        trainer.sanityChecking = false;
      }
      if (rng) defaultRng().setState(rng);
      module.model.train();
      await cbs.call('onTrainStart', module, trainer, module);
      while (!this.shouldStop()) {
        await this.epochLoop.run(module, train, val);
        trainer.currentEpoch++;
      }
      await cbs.call('onTrainEnd', module, trainer, module);
      await cbs.call('onFitEnd', module, trainer, module);
      for (const l of trainer.loggers) await l.finalize?.('success');
    } catch (e) {
      trainer.sanityChecking = false;
      await cbs.call('onException', module, trainer, module, e);
      for (const l of trainer.loggers) await l.finalize?.('failed');
      throw e;
    } finally {
      await cbs.call('teardown', module, trainer, module, 'fit');
      trainer.stage = null;
      // The last step's values and any reduction left by an interrupted epoch are freed with the run.
      this.epochLoop.reset();
    }
  }

  /** maxSteps, maxEpochs, or a callback's stop request once minEpochs are done. */
  private shouldStop(): boolean {
    const trainer = this.trainer;
    const { maxEpochs, minEpochs } = trainer.options;
    if (trainer.maxStepsReached()) return true;
    if (maxEpochs !== -1 && trainer.currentEpoch >= maxEpochs) return true;
    return trainer.shouldStop && trainer.currentEpoch >= minEpochs;
  }
}

/** `configureOptimizers`' answer as a list, checked against the module's optimization mode. */
function configureOptimizers(module: TrainingModule): OptimizerConfig[] {
  const c = module.configureOptimizers();
  const list = Array.isArray(c) ? c : [c];
  if (list.length === 0 || list.some((x) => !x || typeof x.optimizer?.step !== 'function')) {
    throw new ConfigError(`${module.constructor.name}.configureOptimizers()`, 'an { optimizer, scheduler? } configuration, or a list of them', c);
  }
  if (list.length > 1 && module.automaticOptimization) {
    throw new ConfigError(`${module.constructor.name}.configureOptimizers()`, 'one optimizer configuration with automatic optimization', `${list.length} configurations`, 'set automaticOptimization = false and step each optimizer in trainingStep (this.optimizers(), this.manualBackward, this.stepOptimizer)');
  }
  return list;
}
