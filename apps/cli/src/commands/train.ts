import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { manualSeed, liveTensors, ConfigError, type Plugin } from '@kiln/core';
import { DataLoader, channelStats, fashionMnist, holdOut, normalizeDataset, parseAugmentations, AUGMENTATION_NAMES } from '@kiln/data';
import { createModel, MODELS } from '@kiln/zoo';
import { Adagrad, Adam, AdamW, LrScheduler, RAdam, RMSprop, SGD, cosineAnnealingLr, exponentialLr, oneCycleLr, stepLr, type Optimizer } from '@kiln/optim';
import type { Module } from '@kiln/layers';
import {
  ClassificationModule, ConsoleLogger, CsvLogger, EarlyStopping, JsonlLogger, ModelCheckpoint, ProgressBar, TensorBoardLogger,
  callback, createTrainer, logger, type Callback,
} from '@kiln/trainer';
import { choiceArg, floatArg, intArg } from '../args.js';
import { readRunConfig, type FlagValues } from './run-config.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';

const OPTIMIZERS = ['adam', 'adamw', 'sgd', 'rmsprop', 'adagrad', 'radam'] as const;

/** `kiln train --help`. */
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
  --optimizer NAME      ${OPTIMIZERS.join(', ')} (default adam)
  --momentum M          SGD/RMSprop momentum (default 0.9 for sgd, 0 for rmsprop)
  --schedule SPEC       learning-rate schedule: cosine (to 0 over the epochs), step:EPOCHS[:GAMMA],
                        exp:GAMMA (per epoch) or onecycle (per step, peak = --lr) (default none)
  --augment SPEC        training-batch augmentation, e.g. flip,rotate:10,crop:2 — items:
                        ${AUGMENTATION_NAMES.join('; ')}
  --early-stopping P    stop after P epochs without val_loss improvement (train_loss without validation)
  --checkpoint-every N  also checkpoint every N optimizer steps (default: at epoch ends only);
                        checkpoints go to OUT/checkpoints (last.ckpt, best.ckpt)
  --resume CKPT         continue a run exactly from a checkpoint (same data flags and seed)
  --logger LIST         comma-separated: csv, console, jsonl, tensorboard (default csv,console)
  --config FILE         JSON or YAML object of these flags (e.g. {"epochs": 5}); flags on the command line win
`;

/** The optimizer a `--optimizer` name stands for, over a model's trainable parameters. */
function makeOptimizer(name: (typeof OPTIMIZERS)[number], model: Module, lr: number, momentum: number | undefined): Optimizer {
  const params = model.trainableVariables();
  switch (name) {
    case 'sgd':
      return new SGD(params, { lr, momentum: momentum ?? 0.9 });
    case 'adamw':
      return new AdamW(params, { lr });
    case 'rmsprop':
      return new RMSprop(params, { lr, momentum: momentum ?? 0 });
    case 'adagrad':
      return new Adagrad(params, { lr });
    case 'radam':
      return new RAdam(params, { lr });
    default:
      return new Adam(params, { lr });
  }
}

/** `--schedule` as a scheduler over `optimizer`, with the interval it is stepped at. */
function makeSchedule(spec: string, optimizer: Optimizer, epochs: number, stepsPerEpoch: number): { scheduler: LrScheduler; interval: 'epoch' | 'step' } {
  const [name, a, b, ...rest] = spec.split(':');
  const num = (v: string | undefined, what: string) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new ConfigError(`--schedule ${name}`, `${what} as a positive number`, spec);
    return n;
  };
  if (rest.length > 0) throw new ConfigError('--schedule', 'cosine, step:EPOCHS[:GAMMA], exp:GAMMA or onecycle', spec);
  switch (name) {
    case 'cosine':
      return { scheduler: new LrScheduler(optimizer, cosineAnnealingLr({ tMax: Math.max(1, epochs) })), interval: 'epoch' };
    case 'step':
      return { scheduler: new LrScheduler(optimizer, stepLr({ stepSize: Math.round(num(a, 'EPOCHS')), gamma: b === undefined ? 0.1 : num(b, 'GAMMA') })), interval: 'epoch' };
    case 'exp':
      return { scheduler: new LrScheduler(optimizer, exponentialLr({ gamma: num(a, 'GAMMA') })), interval: 'epoch' };
    case 'onecycle':
      return { scheduler: new LrScheduler(optimizer, oneCycleLr({ totalSteps: Math.max(1, epochs * stepsPerEpoch) })), interval: 'step' };
    default:
      throw new ConfigError('--schedule', 'cosine, step:EPOCHS[:GAMMA], exp:GAMMA or onecycle', spec);
  }
}

const TRAIN_OPTIONS = {
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
  optimizer: { type: 'string' },
  momentum: { type: 'string' },
  schedule: { type: 'string' },
  augment: { type: 'string' },
  'early-stopping': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  resume: { type: 'string' },
  logger: { type: 'string' },
  config: { type: 'string' },
} as const;

const LOGGERS = ['csv', 'console', 'jsonl', 'tensorboard'] as const;

/** Command-line flags over the config file's values. */
function trainFlags(argv: string[]): Record<string, string | undefined> {
  const { values } = parseArgs({ args: argv, options: TRAIN_OPTIONS, strict: true });
  const fromFile: FlagValues = values.config ? readRunConfig(values.config, Object.keys(TRAIN_OPTIONS).filter((k) => k !== 'config')) : {};
  const merged: Record<string, string | undefined> = {};
  for (const k of Object.keys(TRAIN_OPTIONS)) {
    const v = (values as Record<string, string | undefined>)[k] ?? fromFile[k];
    if (typeof v === 'boolean') throw new ConfigError(`${values.config}: ${k}`, 'a value, not true/false', v);
    merged[k] = v;
  }
  return merged;
}

/** What a checkpoint written by `kiln train` records so that `kiln evaluate` can rebuild the model and its input scaling. */
export interface CliCheckpointInfo {
  model: string;
  dataset: string;
  numClasses: number;
  normalization: { mean: number[]; std: number[] };
}

/** What `kiln train` prints as its last line and writes to `OUT/summary.json`. */
export interface TrainSummary {
  /** Zoo model name (`lenet5`). */
  model: string;
  /** Dataset name (`fashion-mnist`). */
  dataset: string;
  /** Backend the run used (`wasm`, `webgpu`, …). */
  backend: string;
  /** The backend's device line. */
  device: string;
  /** Epochs trained. */
  epochs: number;
  /** Training batch size. */
  batch_size: number;
  /** Learning rate. */
  lr: number;
  /** Seed of the run. */
  seed: number;
  /** Training examples used. */
  train_examples: number;
  /** Validation examples held out. */
  val_examples: number;
  /** Final validation accuracy, or null without a validation split. */
  val_accuracy: number | null;
  /** Accuracy on the test split. */
  test_accuracy: number;
  /** Mean loss on the test split. */
  test_loss: number;
  /** Training throughput, samples per second. */
  train_samples_per_sec: number;
  /** Wall-clock seconds the command took. */
  wall_seconds: number;
  /** Parameter values in the model. */
  parameters: number;
  /** Per-channel input scaling the model was trained with. */
  normalization: {
    /** Channel means subtracted. */
    mean: number[];
    /** Channel standard deviations divided by. */
    std: number[];
  };
  /** The run directory. */
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

/** Runs `kiln train` with its arguments; progress goes to `err`, results to `out`. */
export async function train(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<TrainSummary> {
  const started = performance.now();
  const values = trainFlags(argv);
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
  const optimizerName = choiceArg('optimizer', values.optimizer, 'adam', OPTIMIZERS);
  const momentum = values.momentum === undefined ? undefined : floatArg('momentum', values.momentum, 0, (n) => n >= 0 && n < 1);
  if (momentum !== undefined && optimizerName !== 'sgd' && optimizerName !== 'rmsprop') throw new ConfigError('--momentum', 'to be used with --optimizer sgd or rmsprop', values.momentum);
  const augment = values.augment ? parseAugmentations(values.augment) : undefined;
  const patience = values['early-stopping'] === undefined ? undefined : intArg('early-stopping', values['early-stopping'], 0, 0);
  const checkpointEvery = intArg('checkpoint-every', values['checkpoint-every'], 0, 0);
  const loggerNames = (values.logger ?? 'csv,console').split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of loggerNames) choiceArg('logger', l, 'csv', LOGGERS);

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
  const trainLoader = new DataLoader(trainSet, { batchSize, shuffle: true, seed, transform: augment });
  const module = new ClassificationModule(model, {
    lr,
    hparams: { zoo_model: modelName, dataset, optimizer: optimizerName, momentum: momentum ?? null, schedule: values.schedule ?? 'none', augment: values.augment ?? 'none', batch_size: batchSize, epochs, seed },
    configureOptimizers: (m) => {
      const optimizer = makeOptimizer(optimizerName, m, lr, momentum);
      return values.schedule && values.schedule !== 'none' ? { optimizer, ...makeSchedule(values.schedule, optimizer, epochs, trainLoader.length) } : { optimizer };
    },
  });
  mkdirSync(outDir, { recursive: true });
  const info: CliCheckpointInfo = { model: modelName, dataset, numClasses: 10, normalization: stats };
  // Records in every checkpoint what `kiln evaluate` needs to rebuild the model and scale its input.
  const cliInfo: Callback = {
    onSaveCheckpoint: (_t, _m, checkpoint) => {
      checkpoint.cli = info;
    },
  };
  const monitor = valSet ? 'val_loss' : 'train_loss';
  const plugins: Plugin[] = [
    callback(new ProgressBar()),
    callback(cliInfo),
    callback(new ModelCheckpoint({ dirpath: path.join(outDir, 'checkpoints'), monitor: valSet ? 'val_acc' : 'train_loss', saveTopK: 1, saveLast: true, everyNSteps: checkpointEvery, everyNEpochs: 1 })),
  ];
  if (patience !== undefined) plugins.push(callback(new EarlyStopping({ monitor, patience })));
  for (const name of loggerNames) {
    if (name === 'csv') plugins.push(logger(new CsvLogger({ dir: outDir })));
    if (name === 'console') plugins.push(logger(new ConsoleLogger(err)));
    if (name === 'jsonl') plugins.push(logger(new JsonlLogger({ dir: outDir })));
    if (name === 'tensorboard') plugins.push(logger(new TensorBoardLogger({ dir: path.join(outDir, 'tensorboard') })));
  }
  const trainer = createTrainer({ maxEpochs: epochs, seed, plugins });
  const valLoader = valSet ? new DataLoader(valSet, { batchSize: 256 }) : undefined;
  const tensorsBefore = liveTensors();
  if (values.resume) err(`resuming from ${values.resume}`);
  await trainer.fit(module, trainLoader, valLoader, values.resume);
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
