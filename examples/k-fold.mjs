// k-fold cross-validation: trains one LeNet-5 per fold, each validated on the fold it did not see,
// and prints per-fold and mean ± std metrics.
//   node examples/k-fold.mjs [--quick]
import { LeNet5 } from '@kiln/zoo';
import { ClassificationModule, createTrainer, crossValidate } from '@kiln/trainer';
import { budget, fashionMnistSplits, quick, startBackend } from './shared.mjs';

await startBackend();
const { train } = await fashionMnistSplits({ limit: 768 });
const k = quick ? 3 : 5;
const result = await crossValidate(k, {
  dataset: quick ? train : train.subset(Array.from({ length: 10000 }, (_, i) => i)),
  batchSize: 64,
  module: () => new ClassificationModule(new LeNet5(), { lr: 1e-3 }),
  trainer: () => createTrainer({ ...budget({ maxEpochs: 2 }), seed: 0 }),
});
console.error(result.table());
console.log(JSON.stringify({ folds: result.folds.length, mean: result.mean }));
