import { tf } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import type { Trainer } from '../trainer.js';
import type { StepOutput, TrainingModule } from '../training-module.js';
import { MetricAverager } from '../metric-averager.js';
import { evaluationLoop } from './evaluation-loop.js';
import { StepRunner } from './optimization.js';

/** Running sums of an interrupted epoch's train metrics, as a mid-epoch checkpoint stores them. */
export type EpochMetricsState = ReturnType<MetricAverager['stateDict']>;

/**
 * One training epoch (Lightning's training epoch loop): its batches, each through the optimization
 * step (`StepRunner`), step-level logging, the validations inside the epoch (`valCheckInterval`) and
 * at its end, the epoch's row for the loggers, epoch-interval schedules and `onTrainEpochEnd`.
 */
export class TrainingEpochLoop {
  private epochSums = new MetricAverager();
  private resumeBatch = 0;

  constructor(private readonly trainer: Trainer) {}

  /** Batches of the current epoch a resumed run skips (set by the checkpoint connector; 0 otherwise). */
  get resumingAtBatch(): number {
    return this.resumeBatch;
  }

  /** The running epoch sums, for a mid-epoch checkpoint. */
  metricsState(): EpochMetricsState {
    return this.epochSums.stateDict();
  }

  /** Resume inside an epoch: skip its first `batch` batches and continue its running sums. */
  resumeAt(batch: number, metrics: EpochMetricsState | null): void {
    this.resumeBatch = batch;
    if (metrics) this.epochSums = MetricAverager.fromState(metrics);
  }

  async run(module: TrainingModule, train: DataLoader, val?: DataLoader): Promise<void> {
    const trainer = this.trainer;
    const cbs = trainer.callbacks;
    const cfg = trainer.optimizerConfig!;
    module.model.train();
    const limit = trainer.batchLimit(train.length, trainer.options.limitTrainBatches);
    trainer.numTrainingBatches = limit;
    const start = this.resumeBatch;
    this.resumeBatch = 0;
    if (start === 0) this.epochSums = new MetricAverager();
    trainer.batchesDone = start;
    trainer.epochTrainingDone = false;
    trainer.freshMetrics = new Set();
    const vci = trainer.options.valCheckInterval;
    const valEvery = vci <= 1 && !Number.isInteger(vci) ? Math.max(1, Math.floor(limit * vci)) : vci === 1 ? limit : vci;
    const valThisEpoch = !!val && (trainer.currentEpoch + 1) % trainer.options.checkValEveryNEpoch === 0;
    await cbs.call('onTrainEpochStart', module, trainer, module);
    const step = new StepRunner(trainer, module, cfg, limit);
    let examples = 0;
    const t0 = performance.now();
    // A checkpoint written after the epoch's last batch but before its end (validation, logging,
    // epoch callbacks) resumes here with nothing left to train: the loader only has to move past
    // the epoch, drawing its order (and augmentation seed) as the interrupted run did.
    if (start > 0 && start >= limit) train.skipEpoch();
    // Asynchronous iteration keeps the loader's next batches loading while this step runs.
    const it = train[Symbol.asyncIterator]();
    try {
      for (let batchIdx = start; batchIdx < limit && !trainer.maxStepsReached(); batchIdx++) {
        const next = await it.next();
        if (next.done) break;
        const batch = next.value;
        let out: StepOutput | undefined;
        try {
          await cbs.call('onTrainBatchStart', module, trainer, module, batch, batchIdx);
          out = await step.run(batch, batchIdx);
          trainer.lastTrainMetrics = await this.epochSums.add(out, 'train_');
          examples += out.batchSize;
          trainer.batchesDone = batchIdx + 1;
          if (trainer.atOptimizerStepBoundary && trainer.globalStep % trainer.options.logEveryNSteps === 0) {
            for (const l of trainer.loggers) await l.logMetrics({ ...trainer.lastTrainMetrics, lr: cfg.optimizer.getLr() }, trainer.globalStep);
          }
          await cbs.call('onTrainBatchEnd', module, trainer, module, out, batch, batchIdx);
        } finally {
          if (out) tf.dispose(Object.values(out.logs));
          tf.dispose([batch.x, batch.y]);
        }
        if (valThisEpoch && (batchIdx + 1) % valEvery === 0 && batchIdx + 1 < limit && trainer.atOptimizerStepBoundary) await this.runValidation(module, val!);
        if (trainer.shouldStop && trainer.currentEpoch + 1 >= trainer.options.minEpochs) break;
      }
      // A loader used to its end is asked once more, so it closes its epoch (its state then points at the next one).
      if (trainer.batchesDone === train.length && start < limit) await it.next();
    } finally {
      step.dispose();
      await it.return?.();
    }
    trainer.epochTrainingDone = true;
    trainer.trainSamplesPerSec = examples / ((performance.now() - t0) / 1000);
    const means = this.epochSums.means();
    trainer.callbackMetrics = { ...trainer.callbackMetrics, ...means, epoch: trainer.currentEpoch };
    for (const k of Object.keys(means)) trainer.freshMetrics.add(k);
    if (valThisEpoch) await this.runValidation(module, val!);
    // The epoch's row is logged before the epoch-end callbacks write checkpoints, so a checkpoint
    // never precedes its own epoch's row (a resume from it neither loses nor repeats the row), and
    // `lr` is the rate this epoch trained with, logged before the epoch schedule steps.
    const row = { ...trainer.callbackMetrics, epoch: trainer.currentEpoch, lr: cfg.optimizer.getLr(), train_samples_per_sec: trainer.trainSamplesPerSec };
    for (const l of trainer.loggers) await l.logMetrics(row, trainer.globalStep);
    const hist = trainer.loggers.filter((l) => l.logHistograms);
    if (hist.length > 0) {
      // One host copy per epoch, only when a logger asked for histograms.
      const named: Record<string, Float32Array> = {};
      for (const [n, p] of module.model.namedParameters()) named[n] = (await p.variable.data()) as Float32Array;
      for (const l of hist) await l.logHistograms!(named, trainer.globalStep);
    }
    for (const c of trainer.optimizerConfigs) if (c.scheduler && (c.interval ?? 'epoch') === 'epoch') trainer.stepScheduler(c, 'epoch');
    await cbs.call('onTrainEpochEnd', module, trainer, module);
  }

  private async runValidation(module: TrainingModule, val: DataLoader): Promise<void> {
    const trainer = this.trainer;
    const m = await evaluationLoop(trainer, module, val, 'validate', trainer.batchLimit(val.length, trainer.options.limitValBatches));
    Object.assign(trainer.callbackMetrics, m);
    module.model.train();
  }
}
