import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { manualSeed, liveTensors } from '@kiln/core';
import { DataLoader, channelStats, fashionMnist, holdOut, normalizeDataset } from '@kiln/data';
import { createModel, MODELS } from '@kiln/zoo';
import { ClassificationModule, ConsoleLogger, CsvLogger, ProgressBar, callback, createTrainer, logger } from '@kiln/trainer';
import { choiceArg, floatArg, intArg } from '../args.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';

export const TRAIN_USAGE = `usage: kiln train --model lenet5 --dataset fashion-mnist [options]

options:
  --model NAME          model from the zoo (${Object.keys(MODELS).join(', ')})
  --dataset NAME        fashion-mnist
  --epochs N            epochs to train (default 2)
  --batch-size B        examples per batch (default 64)
  --lr X                Adam learning rate (default 0.001)
  --seed S              seed for initial weights and shuffling (default 0)
  --data-dir D          directory with the dataset files (else $KILN_DATA_DIR, /usr/share/datasets/fashion-mnist, download)
  --limit-train N       train on the first N training examples only
  --val-split X         fraction (or count) of the training set held out for validation (default 5000)
  --out DIR             output directory (default runs/<timestamp>)
  --backend NAME        auto, wasm, cpu, … (default auto)
`;

export interface TrainSummary {
  model: string;
  dataset: string;
  backend: string;
  device: string;
  epochs: number;
  batch_size: number;
  lr: number;
  seed: number;
  train_examples: number;
  val_examples: number;
  val_accuracy: number | null;
  test_accuracy: number;
  test_loss: number;
  train_samples_per_sec: number;
  wall_seconds: number;
  parameters: number;
  normalization: { mean: number[]; std: number[] };
  out: string;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
}

/** Writes JSON atomically (temporary file, then rename). */
function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

export async function train(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<TrainSummary> {
  const started = performance.now();
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      dataset: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      'data-dir': { type: 'string' },
      'limit-train': { type: 'string' },
      'val-split': { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
    },
    strict: true,
  });
  if (!values.model) throw new UsageError('--model is required', `e.g. --model lenet5\n${TRAIN_USAGE}`);
  const modelName = choiceArg('model', values.model, 'lenet5', Object.keys(MODELS));
  const dataset = choiceArg('dataset', values.dataset ?? 'fashion-mnist', 'fashion-mnist', ['fashion-mnist'] as const);
  const epochs = intArg('epochs', values.epochs, 2);
  const batchSize = intArg('batch-size', values['batch-size'], 64);
  const lr = floatArg('lr', values.lr, 1e-3);
  const seed = intArg('seed', values.seed, 0, 0);
  const limitTrain = values['limit-train'] === undefined ? undefined : intArg('limit-train', values['limit-train'], 0);
  // Default: 5,000 held-out examples, at most a tenth of the training set; an explicit value is used as given.
  const valSplitGiven = values['val-split'] !== undefined;
  const valSplit = floatArg('val-split', values['val-split'], 5000, (n) => n >= 0);
  const outDir = values.out ?? path.join('runs', timestamp());

  const registry = cliBackends();
  const choice = await registry.use(values.backend ?? 'auto');
  err(`backend: ${choice.name} — ${choice.info.device} (${choice.reason})`);

  const [trainFull, test] = await Promise.all([fashionMnist('train', { dataDir: values['data-dir'] }), fashionMnist('test', { dataDir: values['data-dir'] })]);
  let trainSet = limitTrain !== undefined ? trainFull.take(limitTrain) : trainFull;
  let valSet: typeof trainSet | undefined;
  if (valSplit > 0 && trainSet.length > 1) {
    const fraction = valSplit >= 1 && !valSplitGiven ? Math.min(valSplit, Math.floor(trainSet.length / 10)) : valSplit;
    [trainSet, valSet] = holdOut(trainSet, fraction, seed);
  }
  // Standardise with statistics of the training split only; the same numbers are applied to
  // validation and test data and recorded in the summary.
  const stats = channelStats(trainSet);
  trainSet = normalizeDataset(trainSet, stats);
  if (valSet) valSet = normalizeDataset(valSet, stats);
  const testSet = normalizeDataset(test, stats);
  err(`data: ${dataset} train ${trainSet.length}, val ${valSet?.length ?? 0}, test ${test.length}`);

  manualSeed(seed);
  const entry = MODELS[modelName];
  const model = createModel(modelName, { numClasses: 10, inChannels: entry.inputShape[2] });
  const module = new ClassificationModule(model, { lr });
  mkdirSync(outDir, { recursive: true });
  const trainer = createTrainer({
    maxEpochs: epochs,
    seed,
    plugins: [callback(new ProgressBar()), logger(new CsvLogger({ dir: outDir })), logger(new ConsoleLogger(err))],
  });
  const trainLoader = new DataLoader(trainSet, { batchSize, shuffle: true, seed });
  const valLoader = valSet ? new DataLoader(valSet, { batchSize: 256 }) : undefined;
  const tensorsBefore = liveTensors();
  await trainer.fit(module, trainLoader, valLoader);
  const testMetrics = await trainer.test(module, new DataLoader(testSet, { batchSize: 256 }));
  // Optimizer slots are the only tensors training may legitimately add; anything else is a leak.
  trainer.optimizerConfig?.optimizer.dispose();
  const leaked = liveTensors() - tensorsBefore;
  if (leaked > 0) err(`warning: ${leaked} tensors were not released during training`);

  const summary: TrainSummary = {
    model: modelName,
    dataset,
    backend: choice.name,
    device: choice.info.device,
    epochs,
    batch_size: batchSize,
    lr,
    seed,
    train_examples: trainSet.length,
    val_examples: valSet?.length ?? 0,
    val_accuracy: trainer.callbackMetrics.val_acc ?? null,
    test_accuracy: testMetrics.test_acc,
    test_loss: testMetrics.test_loss,
    train_samples_per_sec: trainer.trainSamplesPerSec,
    wall_seconds: (performance.now() - started) / 1000,
    parameters: model.numParameters(),
    normalization: stats,
    out: outDir,
  };
  writeJson(path.join(outDir, 'summary.json'), summary);
  return summary;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a zoo model on a dataset and print test accuracy as JSON',
  usage: TRAIN_USAGE,
  async run(argv, out, err) {
    const summary = await train(argv, out, err);
    // The last line on stdout is the machine-readable result.
    out(JSON.stringify(summary));
    return 0;
  },
};
