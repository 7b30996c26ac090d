import { DataLoader, kFold, type ArrayDataset, type Fold } from '@kiln/data';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';
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

/**
 * k-fold cross-validation on `@kiln/data`'s folds: trains k models, each validated on the fold it
 * did not see, and reports per-fold and mean ± std metrics.
 */
export async function crossValidate(k: number, options: CrossValidateOptions): Promise<CrossValidationResult> {
  const { dataset, batchSize = 32, seed = 0 } = options;
  const folds: FoldResult[] = [];
  for (const [fold, split] of (options.folds ?? kFold(dataset.length, k, { seed })).entries()) {
    const train = new DataLoader(dataset.subset(split.train), { batchSize, shuffle: true, seed: seed + fold });
    const val = new DataLoader(dataset.subset(split.val), { batchSize });
    const module = options.module(fold);
    const trainer = options.trainer(fold);
    await trainer.fit(module, train, val);
    const metrics = await trainer.validate(module, val);
    trainer.optimizerConfig?.optimizer.dispose();
    module.model.dispose();
    folds.push({ fold, trainExamples: split.train.length, valExamples: split.val.length, metrics });
  }
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
