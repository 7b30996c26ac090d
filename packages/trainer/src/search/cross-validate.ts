import { DataLoader, kFold, type ArrayDataset, type Fold } from '@kiln/data';
import type { Trainer } from '../trainer.js';
import { ConfigError } from '@kiln/core';
import type { TrainingModule } from '../training-module.js';
import { TrialFailedError, inProcessExecutor, studyId, type Executor, type StudyProgress, type TrialFunction, type TrialTask } from './executor.js';
import { formatTable, meanStd } from './summary-table.js';

/** Options of {@link crossValidate}. */
export interface CrossValidateOptions {
  /** The examples to split into folds. */
  dataset: ArrayDataset;
  /** A fresh module for fold `fold` (new weights each time). */
  module: (fold: number) => TrainingModule;
  /** A fresh Trainer for fold `fold` (callbacks and loggers per fold). */
  trainer: (fold: number) => Trainer;
  /** Default 32. */
  batchSize?: number;
  /** Seed of the fold assignment and of each fold's shuffling (default 0). */
  seed?: number;
  /** Folds to use instead of `kFold(n, k)` (e.g. `stratifiedKFold(labels, k)` from @kiln/data). */
  folds?: Fold[];
  /** How folds run: `inProcessExecutor()` (default) or a queue's executor whose workers run `crossValidationTrial(k, options)`. */
  executor?: Executor;
  /**
   * Study identity for executors that deduplicate work (default: a hash of k, the seed and the
   * dataset size). On a queue, name each cross-validation: two with the same k, seed and size would
   * otherwise share their finished folds.
   */
  study?: string;
  /** Called with the fold counts whenever they change (a fold starts or finishes). */
  onProgress?: (progress: StudyProgress) => void;
}

/** One fold's outcome. */
export interface FoldResult {
  /** The fold's index, from 0. */
  fold: number;
  /** Examples it trained on. */
  trainExamples: number;
  /** Examples it was validated on. */
  valExamples: number;
  /** Held-out metrics of the fold's final model (`val_loss`, `val_acc`, …). */
  metrics: Record<string, number>;
}

/** What {@link crossValidate} returns. */
export interface CrossValidationResult {
  /** Each fold's outcome. */
  folds: FoldResult[];
  /** Each metric's mean over the folds. */
  mean: Record<string, number>;
  /** Each metric's sample standard deviation (n − 1) over the folds; NaN for one fold. */
  std: Record<string, number>;
  /** Per-fold rows and a mean ± std row. */
  table(): string;
}

/** The fold a task asks for, as the executor hands it over. */
export interface FoldTaskParams {
  /** Index of the fold to validate on, from 0; the model trains on the others. */
  fold: number;
}

function foldsOf(k: number, options: CrossValidateOptions): Fold[] {
  return options.folds ?? kFold(options.dataset.length, k, { seed: options.seed ?? 0 });
}

/**
 * The work of one fold as a trial function: trains a fresh module on the other folds and returns
 * its held-out metrics with the split sizes. Queue workers serving `crossValidate` run this with the
 * same `k` and options as the submitter.
 */
export function crossValidationTrial(k: number, options: CrossValidateOptions): TrialFunction<FoldTaskParams> {
  const { dataset, batchSize = 32, seed = 0 } = options;
  const folds = foldsOf(k, options);
  return async (task) => {
    const fold = task.params.fold;
    const split = folds[fold];
    if (!split) throw new ConfigError('crossValidate fold', `0 … ${folds.length - 1}`, fold);
    const train = new DataLoader(dataset.subset(split.train), { batchSize, shuffle: true, seed: seed + fold });
    const val = new DataLoader(dataset.subset(split.val), { batchSize });
    const module = options.module(fold);
    const trainer = options.trainer(fold);
    try {
      await trainer.fit(module, train, val);
      const metrics = await trainer.validate(module, val);
      return { ...metrics, train_examples: split.train.length, val_examples: split.val.length };
    } finally {
      trainer.optimizerConfig?.optimizer.dispose();
      module.model.dispose();
    }
  };
}

/**
 * k-fold cross-validation on `@kiln/data`'s folds: trains k models, each validated on the fold it
 * did not see, and reports per-fold and mean ± std metrics. Folds run on `options.executor`; a fold
 * that fails fails the whole cross-validation (its mean would be meaningless), naming the fold.
 */
export async function crossValidate(k: number, options: CrossValidateOptions): Promise<CrossValidationResult> {
  const n = foldsOf(k, options).length;
  const tasks: TrialTask<FoldTaskParams>[] = Array.from({ length: n }, (_, fold) => ({ key: `fold-${fold}`, trial: 0, fold, params: { fold } }));
  const executor = options.executor ?? inProcessExecutor();
  const study = options.study ?? studyId({ crossValidate: k, seed: options.seed ?? 0, n: options.dataset.length });
  const outcomes = await executor.run(tasks, crossValidationTrial(k, options), { study, onProgress: options.onProgress });
  const folds: FoldResult[] = outcomes
    .sort((a, b) => a.task.params.fold - b.task.params.fold)
    .map((o) => {
      if (o.status === 'failed') throw new TrialFailedError(o.task.key, o.error, o.attempts);
      const { train_examples: trainExamples, val_examples: valExamples, ...metrics } = o.metrics;
      return { fold: o.task.params.fold, trainExamples, valExamples, metrics };
    });
  const { mean, std } = meanStd(folds.map((f) => f.metrics));
  const keys = Object.keys(mean);
  return {
    folds,
    mean,
    std,
    table: () =>
      formatTable(
        ['fold', 'train', 'val', ...keys],
        [...folds.map((f) => [f.fold, f.trainExamples, f.valExamples, ...keys.map((key) => f.metrics[key])]), ['mean ± std', '', '', ...keys.map((key) => `${mean[key].toFixed(4)} ± ${std[key].toFixed(4)}`)]],
      ),
  };
}
