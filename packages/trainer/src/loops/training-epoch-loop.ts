import { tf } from '@kiln/core';
import type { DataLoader } from '@kiln/data';
import type { Trainer } from '../trainer.js';
import type { StepOutput, TrainingModule } from '../training-module.js';
import type { CheckpointMeta } from '../checkpoint.js';
import { ResultCollection } from '../result-collection.js';
import { evaluationLoop } from './evaluation-loop.js';
import { StepRunner } from './optimization.js';

/** Running reductions of an interrupted epoch's train metrics, as a mid-epoch checkpoint stores them. */
export type EpochMetricsState = NonNullable<CheckpointMeta['epochMetrics']>;

/**
 * One training epoch (Lightning's training epoch loop): its batches, each through the optimization
 * step (`StepRunner`), step-level logging, the validations inside the epoch (`valCheckInterval`) and
 * at its end, the epoch's row for the loggers, epoch-interval schedules and `onTrainEpochEnd`.
 *
 * Logged values (a step's returned `logs`, `module.log`) stay on the device: the step values are
 * read to the host only in steps where a logger logs or a callback asked (`needsStepMetrics`), the
 * epoch reductions once, at the epoch's end.
 */
export class TrainingEpochLoop {
  /** What the training steps and hooks logged: the last step's values and the epoch's reductions. */
  results = new ResultCollection();
  private resumeBatch = 0;

  constructor(private readonly trainer: Trainer) {}

  /** Batches of the current epoch a resumed run skips (set by the checkpoint connector; 0 otherwise). */
  get resumingAtBatch(): number {
    return this.resumeBatch;
  }

  /** The running reductions, for a mid-epoch checkpoint (one read). */
  async metricsState(): Promise<EpochMetricsState> {
    const reductions = await this.results.stateDict();
    // `sums`/`count` as checkpoints had them before `log`: the means of the returned step outputs.
    const means = Object.entries(reductions).filter(([, r]) => r.reduce === 'mean');
    return {
      sums: Object.fromEntries(means.map(([k, r]) => [k, r.acc as number])),
      count: Math.round(Math.max(0, ...means.map(([, r]) => r.weight))),
      reductions,
    };
  }

  /** Resume inside an epoch: skip its first `batch` batches and continue its running reductions. */
  resumeAt(batch: number, metrics: EpochMetricsState | null): void {
    this.resumeBatch = batch;
    if (!metrics) return;
    this.results.loadStateDict(metrics.reductions ?? Object.fromEntries(Object.entries(metrics.sums).map(([k, acc]) => [k, { reduce: 'mean' as const, acc, weight: metrics.count }])));
  }

  /** A fresh start for a new `fit`: nothing logged, nothing to resume. */
  reset(): void {
    this.results.dispose();
    this.resumeBatch = 0;
  }

  async run(module: TrainingModule, train: DataLoader, val?: DataLoader): Promise<void> {
    const trainer = this.trainer;
    const cbs = trainer.callbacks;
    const cfg = trainer.optimizerConfig!;
    const results = this.results;
    module.model.train();
    const limit = trainer.batchLimit(train.length, trainer.options.limitTrainBatches);
    trainer.numTrainingBatches = limit;
    const start = this.resumeBatch;
    this.resumeBatch = 0;
    trainer.batchesDone = start;
    trainer.epochTrainingDone = false;
    trainer.freshMetrics = new Set();
    const vci = trainer.options.valCheckInterval;
    const valEvery = vci <= 1 && !Number.isInteger(vci) ? Math.max(1, Math.floor(limit * vci)) : vci === 1 ? limit : vci;
    const valThisEpoch = !!val && (trainer.currentEpoch + 1) % trainer.options.checkValEveryNEpoch === 0;
    // A plateau scheduler stepped per optimizer step reads the step's value.
    const stepMonitor = trainer.optimizerConfigs.some((c) => c.scheduler && c.interval === 'step' && c.monitor);
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
          const stepsBefore = trainer.globalStep;
          out = await step.run(batch, batchIdx);
          // The step's values become the current step values (the results own them from here).
          results.adopt('train_', out.logs, true, !step.lastSkipped);
          results.commit(out.batchSize);
          trainer.stepOverride = null;
          examples += out.batchSize;
          trainer.batchesDone = batchIdx + 1;
          const stepped = trainer.globalStep > stepsBefore;
          const logNow = trainer.loggers.length > 0 && trainer.atOptimizerStepBoundary && trainer.globalStep % trainer.options.logEveryNSteps === 0;
          // The one host read of this step, made only when something consumes the values.
          if (logNow || (stepped && stepMonitor) || cbs.needStepMetrics(trainer, batchIdx)) await results.stepValues();
          if (stepped) for (const c of trainer.optimizerConfigs) if (c.scheduler && c.interval === 'step') trainer.stepScheduler(c, 'step');
          if (logNow) {
            const values = await results.stepValues();
            for (const l of trainer.loggers) await l.logMetrics({ ...values, lr: cfg.optimizer.getLr() }, trainer.globalStep);
          }
          await cbs.call('onTrainBatchEnd', module, trainer, module, out, batch, batchIdx);
          // Values logged in onTrainBatchEnd join this step's.
          if (results.hasPending) results.commit(out.batchSize, true);
        } finally {
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
    // The epoch's reductions: one read for every key.
    const means = await results.epochValues();
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
    // Non-monitoring callbacks, the module (whose logged values `publishLateValues` then makes
    // current), then the monitoring callbacks: see CallbackList.call.
    await cbs.call('onTrainEpochEnd', module, trainer, module);
    results.resetEpoch();
  }

  /**
   * Values the module logged in `onTrainEpochEnd` (after the epoch's row was written): their epoch
   * values join `callbackMetrics` as current, for the monitoring callbacks that run next, and go to
   * the loggers at the same step.
   * @internal
   */
  async publishLateValues(): Promise<void> {
    const trainer = this.trainer;
    const before = trainer.callbackMetrics;
    const all = await this.results.epochValues();
    const late = Object.fromEntries(Object.entries(all).filter(([k, v]) => !trainer.freshMetrics.has(k) || before[k] !== v));
    if (Object.keys(late).length === 0) return;
    Object.assign(trainer.callbackMetrics, late);
    for (const k of Object.keys(late)) trainer.freshMetrics.add(k);
    for (const l of trainer.loggers) await l.logMetrics({ ...late, epoch: trainer.currentEpoch }, trainer.globalStep);
  }

  private async runValidation(module: TrainingModule, val: DataLoader): Promise<void> {
    const trainer = this.trainer;
    const m = await evaluationLoop(trainer, module, val, 'validate', trainer.batchLimit(val.length, trainer.options.limitValBatches));
    Object.assign(trainer.callbackMetrics, m);
    module.model.train();
  }
}
