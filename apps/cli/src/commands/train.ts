import { parseArgs } from 'node:util';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { tf, manualSeed, liveTensors, ConfigError, type Plugin } from '@kiln/core';
import { runDirectory } from '../run-dir.js';
import { testReport, type TestReport } from '../test-report.js';
import { DataLoader, kFold, parseAugmentations, subsetDataset, AUGMENTATION_NAMES, type Dataset, type Example } from '@kiln/data';
import { MODELS, chooseVariant } from '@kiln/zoo';
import { Adagrad, Adam, AdamW, LrScheduler, RAdam, RMSprop, SGD, cosineAnnealingLr, exponentialLr, oneCycleLr, stepLr, type Optimizer } from '@kiln/optim';
import type { Module } from '@kiln/layers';
import {
  ClassificationModule, ConsoleLogger, CsvLogger, EarlyStopping, JsonlLogger, ModelCheckpoint, ProgressBar, TensorBoardLogger,
  TerminateOnNaN, callback, checkpointTensors, createTrainer, loadCheckpoint, logger, readCheckpoint,
  type Callback, type Trainer,
} from '@kiln/trainer';
import { writeFileAtomic } from '@kiln/core/node';
import { choiceArg, floatArg, intArg } from '../args.js';
import { readRunConfig, type FlagValues } from './run-config.js';
import { startRun } from '../backends.js';
import { DATA_OPTIONS, DATA_USAGE, flagsExpecting, inputPipeline, inputStats, loadData, preprocessingOf, sampleDataset, splitValidation, type Preprocessing } from '../datasets.js';
import { identifyPretrained, loadPretrainedWeights, modelFor, recordInfo, type CliCheckpointInfo } from '../checkpoint-info.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';

const OPTIMIZERS = ['adam', 'adamw', 'sgd', 'rmsprop', 'adagrad', 'radam'] as const;

/** `kiln train --help`. */
export const TRAIN_USAGE = `usage: kiln train --model lenet5 --dataset fashion-mnist [options]
       kiln train --model resnet18 --dataset folder:photos --image-size 64x64 [options]

Input channels follow the data; images smaller than a model's usual input get its small-input
variant (e.g. ResNet's 3×3 stem without max-pool) unless --image-size resizes them.

options:
  --model NAME          model from the zoo (${Object.keys(MODELS).join(', ')})
${DATA_USAGE}
  --epochs N            epochs to train (default 2)
  --batch-size B        examples per batch (default 64)
  --lr X                Adam learning rate (default 0.001)
  --seed S              seed for initial weights and shuffling (default 0)
  --limit-train N       train on N training examples drawn at random (under --seed) only
  --val-split X         fraction (or count) of the training set held out for validation (default 5000,
                        at most a tenth; a folder's val/ sub-folder is used instead when it has one)
  --folds K --fold I    validate on fold I (0-based) of K folds of the training set instead of --val-split
  --out DIR             output directory (default runs/<timestamp>); one that holds an earlier run
                        is not overwritten: the run goes to DIR/version_N
  --backend NAME        auto, wasm, cpu, … (default auto)
  --threads N           compute threads of the CPU backend (oneDNN's pool, or WASM's without it);
                        default: KILN_NUM_THREADS, else every core with oneDNN and the cores
                        not busy at start-up without it (docs/backends.md)
  --optimizer NAME      ${OPTIMIZERS.join(', ')} (default adam)
  --momentum M          SGD/RMSprop momentum (default 0.9 for sgd, 0 for rmsprop)
  --schedule SPEC       learning-rate schedule: cosine (to 0 over the epochs), step:EPOCHS[:GAMMA],
                        exp:GAMMA (per epoch) or onecycle (per step, peak = --lr) (default none)
  --augment SPEC        training-batch augmentation, e.g. flip,rotate:10,crop:2 — items:
                        ${AUGMENTATION_NAMES.join('; ')}
  --early-stopping P    stop after P epochs without val_loss improvement (train_loss without validation)
  --checkpoint-every N  also checkpoint every N optimizer steps (default: at epoch ends only);
                        checkpoints go to OUT/checkpoints (last.ckpt, best.ckpt)
  --resume CKPT         continue a run exactly from a checkpoint (same data flags and seed; a
                        checkpoint written with other data flags is refused, naming them)
  --on-nan stop|skip    a NaN or Inf loss or gradient stops the run before it reaches the weights
                        (exit 1, naming the step, learning rate and parameter; checkpoints stay the
                        last good ones), or skips that update (default stop)
  --pretrained FILE     start from these weights (.pth/.pt, .safetensors, a Kiln checkpoint, or a torchvision
                        weight name such as resnet18, fetched like import-weights --weights); the head
                        is left new when its classes differ. Published torchvision weights are recognised
                        and the data prepared as they expect (size, shorter-side resize, their mean/std)
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

export const TRAIN_OPTIONS = {
  model: { type: 'string' },
  ...DATA_OPTIONS,
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  seed: { type: 'string' },
  'limit-train': { type: 'string' },
  'val-split': { type: 'string' },
  folds: { type: 'string' },
  fold: { type: 'string' },
  out: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  optimizer: { type: 'string' },
  momentum: { type: 'string' },
  schedule: { type: 'string' },
  augment: { type: 'string' },
  'early-stopping': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  resume: { type: 'string' },
  'on-nan': { type: 'string' },
  pretrained: { type: 'string' },
  logger: { type: 'string' },
  config: { type: 'string' },
} as const;

const LOGGERS = ['csv', 'console', 'jsonl', 'tensorboard'] as const;

/**
 * Command-line flags over the config file's values: `kiln train`'s flags, plus `extra` ones of a
 * command that shares them (`kiln tune`).
 */
export function trainFlags(argv: string[], extra: Record<string, { type: 'string' }> = {}): Record<string, string | undefined> {
  const options = { ...TRAIN_OPTIONS, ...extra };
  const { values } = parseArgs({ args: argv, options, strict: true }) as { values: Record<string, string | undefined> };
  const fromFile: FlagValues = values.config ? readRunConfig(values.config, Object.keys(options).filter((k) => k !== 'config')) : {};
  const merged: Record<string, string | undefined> = {};
  for (const k of Object.keys(options)) {
    const v = values[k] ?? fromFile[k];
    if (typeof v === 'boolean') throw new ConfigError(`${values.config}: ${k}`, 'a value, not true/false', v);
    merged[k] = v;
  }
  return merged;
}

export type { CliCheckpointInfo };

/**
 * The result of one `kiln train` run, written to `<out>/summary.json` and printed by the command
 * as its last line on stdout. Metrics are fractions in [0, 1] (accuracies) and mean cross-entropy
 * (losses).
 */
export interface TrainSummary extends Partial<TestReport> {
  /** Zoo model name (`lenet5`). */
  model: string;
  /** Dataset name (`fashion-mnist`). */
  dataset: string;
  /** Backend the run used (`wasm`, `webgpu`, …). */
  backend: string;
  /** The backend's device line. */
  device: string;
  /** Compute threads the backend runs with (oneDNN's pool when it is on), or null when it does not say. */
  threads: number | null;
  /** Epochs asked for, epochs trained (fewer when early stopping ended the run), and whether it did. */
  epochs: number;
  /** Epochs completed when training ended (a resumed run counts its checkpoint's epochs too). */
  epochs_run: number;
  /** Whether `--early-stopping` ended the run before `epochs`. */
  stopped_early: boolean;
  /** Training batch size. */
  batch_size: number;
  /** Learning rate. */
  lr: number;
  /** Seed of the run. */
  seed: number;
  /** Class names; the model's output `i` is `classes[i]`. */
  classes: string[];
  /** [H, W, C] of the model's input. */
  input_shape: [number, number, number];
  /** Training examples used. */
  train_examples: number;
  /** Validation examples held out. */
  val_examples: number;
  /** Test examples evaluated (0 without a test split). */
  test_examples: number;
  /** Validation accuracy of the last validation run (null without a validation split). */
  val_accuracy: number | null;
  /** Test metrics of the weights at the end of training (null without a test split). */
  test_accuracy: number | null;
  /** Test loss of the weights at the end of training (null without a test split). */
  test_loss: number | null;
  /** The best checkpoint by validation accuracy (or training loss), its epoch (0-based) and its test metrics. */
  best_checkpoint: string | null;
  /** The epoch (0-based) the best checkpoint was saved in (null when none was written). */
  best_epoch: number | null;
  /** Test accuracy of the best checkpoint's weights (null without a test split or a best checkpoint). */
  best_test_accuracy: number | null;
  /** Test loss of the best checkpoint's weights (null without a test split or a best checkpoint). */
  best_test_loss: number | null;
  /** Training throughput, samples per second. */
  train_samples_per_sec: number;
  /** Wall-clock seconds the command took. */
  wall_seconds: number;
  /** Parameter values in the model. */
  parameters: number;
  /**
   * Per-channel statistics every input (values in [0, 1]) is standardised with: from the training
   * split, or the published values of `--pretrained` weights.
   */
  normalization: {
    /** Mean subtracted, one per input channel. */
    mean: number[];
    /** Standard deviation divided by, one per input channel. */
    std: number[];
  };
  /** What the trained model expects of its input (size, channels, resize, mean/std), as its checkpoints record it. */
  preprocessing: Preprocessing;
  /** The run directory. */
  out: string;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
}

/** Writes JSON atomically (fsynced temporary file, then rename): a crash leaves the old file or the new one. */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** What a caller running `kiln train` as a library (a study's trial) may add to the run. */
export interface TrainExtras {
  /** Callbacks after the command's own (e.g. one reporting epoch metrics to a study). */
  callbacks?: Callback[];
}

/**
 * What `kiln train` builds from its flags before a trainer exists — the backend, the data and its
 * splits, the input statistics, the model, its module and the training loader — so that commands
 * sharing the flags (`kiln tune`) build exactly the same. The caller closes `data`.
 */
export async function prepareRun(values: Record<string, string | undefined>, err: (line: string) => void) {
  if (!values.model) throw new UsageError('--model is required', `e.g. --model lenet5\n${TRAIN_USAGE}`);
  const modelName = choiceArg('model', values.model, 'lenet5', Object.keys(MODELS));
  const epochs = intArg('epochs', values.epochs, 2);
  const batchSize = intArg('batch-size', values['batch-size'], 64);
  const lr = floatArg('lr', values.lr, 1e-3);
  const seed = intArg('seed', values.seed, 0, 0);
  const limitTrain = values['limit-train'] === undefined ? undefined : intArg('limit-train', values['limit-train'], 1);
  const valSplitGiven = values['val-split'] !== undefined;
  const valSplit = floatArg('val-split', values['val-split'], 5000, (n) => n >= 0);
  const outDir = runDirectory(values.out ?? path.join('runs', timestamp()), values.resume, err);
  const onNan = choiceArg('on-nan', values['on-nan'], 'stop', ['stop', 'skip'] as const);
  const folds = values.folds === undefined ? undefined : intArg('folds', values.folds, 0, 2);
  if ((folds === undefined) !== (values.fold === undefined)) throw new ConfigError('--folds/--fold', 'both flags together', values.folds ?? values.fold);
  const fold = intArg('fold', values.fold, 0, 0);
  if (folds !== undefined && fold >= folds) throw new ConfigError('--fold', `0 … ${folds - 1} (--folds ${folds})`, values.fold);
  const optimizerName = choiceArg('optimizer', values.optimizer, 'adam', OPTIMIZERS);
  const momentum = values.momentum === undefined ? undefined : floatArg('momentum', values.momentum, 0, (n) => n >= 0 && n < 1);
  if (momentum !== undefined && optimizerName !== 'sgd' && optimizerName !== 'rmsprop') throw new ConfigError('--momentum', 'to be used with --optimizer sgd or rmsprop', values.momentum);
  const augment = values.augment ? parseAugmentations(values.augment) : undefined;
  const patience = values['early-stopping'] === undefined ? undefined : intArg('early-stopping', values['early-stopping'], 0, 0);
  const checkpointEvery = intArg('checkpoint-every', values['checkpoint-every'], 0, 0);
  const loggerNames = (values.logger ?? 'csv,console').split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of loggerNames) choiceArg('logger', l, 'csv', LOGGERS);

  // The CPU backend reads its thread count from KILN_NUM_THREADS when it starts; the flag sets it
  // for this process (and any process it starts), so one thread count holds for the whole run.
  if (values.threads !== undefined) process.env.KILN_NUM_THREADS = String(intArg('threads', values.threads, 1));
  // The data needs no backend: unless published weights decide how it is prepared, it is read
  // while the backend starts, its files decompressing on Node's thread pool as the backends are
  // probed on this thread. A failure surfaces where the data is awaited, after the backend's.
  const early = values.pretrained ? undefined : loadData(values, { onWarning: err });
  early?.catch(() => undefined);
  let run: Awaited<ReturnType<typeof startRun>>;
  try {
    run = await startRun(values.backend, err);
  } catch (e) {
    await early?.then((d) => d.close(), () => undefined);
    throw e;
  }
  const choice = run.backend;
  const why = values.threads !== undefined ? '--threads' : choice.info.details?.threadChoice;
  if (why) err(`threads: ${backendThreads(choice.info.details)} (${why})`);

  // Published weights expect their own input preparation; flags given on the command line still win.
  const pretrained = values.pretrained ? await identifyPretrained(values.pretrained, err) : undefined;
  const known = pretrained?.known?.preprocessing;
  const data = await (early ?? loadData(known ? flagsExpecting(values, { size: known.size, channels: 3, resize: 'shorter-side' }) : values, { onWarning: err }));
  try {
    let trainSet: Dataset<Example> = limitTrain !== undefined ? sampleDataset(data.train, limitTrain, seed) : data.train;
    let [trainPart, valSet]: [Dataset<Example>, Dataset<Example> | undefined] = [trainSet, undefined];
    if (folds !== undefined) {
      // The same kFold assignment for every fold of a study (seeded by --seed), so the folds partition the set.
      const split = kFold(trainSet.length, folds, { seed })[fold];
      [trainPart, valSet] = [subsetDataset(trainSet, split.train), subsetDataset(trainSet, split.val)];
    } else {
      // Default: 5,000 held-out examples, at most a tenth of the training set; an explicit value is used as given.
      [trainPart, valSet] = splitValidation(trainSet, data.val, valSplitGiven ? valSplit : Math.min(valSplit, Math.floor(trainSet.length / 10)), seed);
    }
    trainSet = trainPart;
    const testSet = data.test;
    // Standardise with statistics of the training split only; the same numbers are applied to
    // validation, test and prediction inputs and recorded in every checkpoint.
    const stats = known ? { mean: [...known.mean], std: [...known.std] } : await inputStats(data, trainSet, seed);
    const preprocessing = preprocessingOf(data, stats);
    const evalTransform = inputPipeline(data.convert, stats);
    for (const note of data.notes) err(`data: ${note}`);
    err(`data: ${values.dataset ?? 'fashion-mnist'}: ${data.classes.length} classes, train ${trainSet.length}, val ${valSet?.length ?? 0}, test ${testSet?.length ?? 0}, input ${data.inputShape.join('×')}`);

    manualSeed(seed);
    const info: CliCheckpointInfo = {
      model: modelName,
      dataset: preprocessing.dataset,
      numClasses: data.classes.length,
      classes: data.classes,
      inputShape: data.inputShape,
      preprocessing,
      normalization: stats,
    };
    const runHparams: Record<string, unknown> = {
      zoo_model: modelName,
      dataset: preprocessing.dataset,
      optimizer: optimizerName,
      momentum: momentum ?? null,
      schedule: values.schedule ?? 'none',
      augment: values.augment ?? 'none',
      batch_size: batchSize,
      epochs,
      seed,
      limit_train: limitTrain ?? null,
      val_split: folds === undefined ? (valSplitGiven ? valSplit : 'default') : null,
      folds: folds ?? null,
      fold: folds === undefined ? null : fold,
      input_shape: data.inputShape,
    };
    if (values.resume) checkResumeFlags(values.resume, runHparams);
    const model = modelFor({ model: modelName, inputShape: data.inputShape, numClasses: data.classes.length });
    err(`model: ${modelName}: ${chooseVariant(modelName, { inputShape: data.inputShape }).reason}`);
    if (pretrained) await loadPretrainedWeights(model, pretrained, err);
    const trainLoader = new DataLoader(trainSet, { batchSize, shuffle: true, seed, exampleShape: data.shape, transform: inputPipeline(data.convert, stats, augment) });
    const module = new ClassificationModule(model, {
      lr,
      hparams: runHparams,
      configureOptimizers: (m) => {
        const optimizer = makeOptimizer(optimizerName, m, lr, momentum);
        return values.schedule && values.schedule !== 'none' ? { optimizer, ...makeSchedule(values.schedule, optimizer, epochs, trainLoader.length) } : { optimizer };
      },
    });
    return { values, modelName, epochs, batchSize, lr, seed, limitTrain, valSplitGiven, valSplit, outDir, onNan, folds, fold, optimizerName, momentum, augment, patience, checkpointEvery, loggerNames, choice, container: run.container, pretrained, data, trainSet, valSet, testSet, stats, preprocessing, evalTransform, info, runHparams, model, trainLoader, module };
  } catch (e) {
    await data.close();
    throw e;
  }
}

/** The run `prepareRun` built. */
export type PreparedRun = Awaited<ReturnType<typeof prepareRun>>;

/**
 * Runs `kiln train` in-process with the command-line arguments `argv` (see {@link TRAIN_USAGE}):
 * trains, tests, writes the run directory and `summary.json`, and returns the summary. Progress,
 * notes and warnings go to `err`; `out` is not written to. Throws on a missing or invalid flag.
 */
export async function train(argv: string[], out: (line: string) => void, err: (line: string) => void, extras: TrainExtras = {}): Promise<TrainSummary> {
  const started = performance.now();
  const run = await prepareRun(trainFlags(argv), err);
  const { values, modelName, epochs, batchSize, lr, seed, outDir, onNan, patience, checkpointEvery, loggerNames, choice, data, trainSet, valSet, testSet, stats, preprocessing, evalTransform, info, model, trainLoader, module } = run;
  try {
    mkdirSync(outDir, { recursive: true });
    const monitor = valSet ? 'val_loss' : 'train_loss';
    const checkpoints = new ModelCheckpoint({ dirpath: path.join(outDir, 'checkpoints'), monitor: valSet ? 'val_acc' : 'train_loss', saveTopK: 1, saveLast: true, everyNSteps: checkpointEvery, everyNEpochs: 1 });
    const earlyStopping = patience !== undefined ? new EarlyStopping({ monitor, patience }) : undefined;
    // A NaN/Inf gradient is caught before the optimizer applies it: stop (exit 1) or skip that update.
    const nanGuard = new TerminateOnNaN({ checkGradients: true, raise: onNan === 'stop', onNonFinite: onNan });
    const plugins: Plugin[] = [callback(new ProgressBar()), callback(recordInfo(info)), callback(nanGuard), callback(checkpoints)];
    if (earlyStopping) plugins.push(callback(earlyStopping));
    for (const c of extras.callbacks ?? []) plugins.push(callback(c));
    for (const name of loggerNames) {
      // The curves mark the epoch best.ckpt was saved from: the same metric and direction as ModelCheckpoint's.
      if (name === 'csv') plugins.push(logger(new CsvLogger({ dir: outDir, monitor: valSet ? 'val_acc' : 'train_loss' })));
      if (name === 'console') plugins.push(logger(new ConsoleLogger(err)));
      if (name === 'jsonl') plugins.push(logger(new JsonlLogger({ dir: outDir })));
      if (name === 'tensorboard') plugins.push(logger(new TensorBoardLogger({ dir: path.join(outDir, 'tensorboard') })));
    }
    const trainer = createTrainer({ container: run.container, maxEpochs: epochs, seed, plugins });
    const valLoader = valSet ? new DataLoader(valSet, { batchSize: 256, exampleShape: data.shape, transform: evalTransform }) : undefined;
    const tensorsBefore = liveTensors();
    if (values.resume) err(`resuming from ${values.resume}`);
    await trainer.fit(module, trainLoader, valLoader, values.resume);
    const epochsRun = trainer.currentEpoch;
    const testLoader = testSet ? new DataLoader(testSet, { batchSize: 256, exampleShape: data.shape, transform: evalTransform }) : undefined;
    const testMetrics = testLoader ? await trainer.test(module, testLoader) : undefined;
    const report = testLoader ? await testReport(module, testLoader, data.classes, path.join(outDir, 'confusion_matrix.png'), trainer.loggers, trainer.globalStep, err) : {};
    const best = await testBest(trainer, module, testLoader, checkpoints.bestModelPath, testMetrics, err);
    // Optimizer slots are the only tensors training may legitimately add; anything else is a leak.
    trainer.optimizerConfig?.optimizer.dispose();
    const leaked = liveTensors() - tensorsBefore;
    if (leaked > 0) err(`warning: ${leaked} tensors were not released during training`);
    if (!testLoader) err('no test split: test metrics are null');

    const summary: TrainSummary = {
      model: modelName,
      dataset: preprocessing.dataset,
      backend: choice.name,
      device: choice.info.device,
      threads: backendThreads(choice.info.details),
      epochs,
      epochs_run: epochsRun,
      stopped_early: (earlyStopping?.stoppedEpoch ?? -1) >= 0,
      batch_size: batchSize,
      lr,
      seed,
      classes: data.classes,
      input_shape: data.inputShape,
      train_examples: trainSet.length,
      val_examples: valSet?.length ?? 0,
      test_examples: testSet?.length ?? 0,
      val_accuracy: trainer.callbackMetrics.val_acc ?? null,
      test_accuracy: testMetrics?.test_acc ?? null,
      test_loss: testMetrics?.test_loss ?? null,
      ...best,
      ...report,
      train_samples_per_sec: trainer.trainSamplesPerSec,
      wall_seconds: (performance.now() - started) / 1000,
      parameters: model.numParameters(),
      normalization: stats,
      preprocessing,
      out: outDir,
    };
    writeJson(path.join(outDir, 'summary.json'), summary);
    model.dispose();
    return summary;
  } finally {
    await data.close();
  }
}

/** The threads a backend reports computing with: oneDNN's pool when it runs the heavy kernels, else its own. */
function backendThreads(details: Record<string, string | number | boolean> | undefined): number | null {
  const n = Number(details?.dnnlThreads) || Number(details?.threads);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/**
 * Test metrics of the best checkpoint: its epoch, and its test metrics when it is not the weights
 * just tested (then the model is left holding the best weights).
 */
async function testBest(
  trainer: Trainer,
  module: ClassificationModule,
  testLoader: DataLoader | undefined,
  bestPath: string,
  last: Record<string, number> | undefined,
  err: (line: string) => void,
): Promise<Pick<TrainSummary, 'best_checkpoint' | 'best_epoch' | 'best_test_accuracy' | 'best_test_loss'>> {
  const none = { best_checkpoint: null, best_epoch: null, best_test_accuracy: null, best_test_loss: null };
  const file = bestPath ? path.join(path.dirname(bestPath), 'best.ckpt') : '';
  if (!file || !existsSync(file)) return none;
  const ck = readCheckpoint(file);
  const { epoch } = ck.meta.callbackMetrics;
  const sameAsLast = ck.meta.globalStep === trainer.globalStep;
  tf.dispose(checkpointTensors(ck));
  const out = { ...none, best_checkpoint: file, best_epoch: epoch ?? null };
  if (!testLoader) return out;
  let metrics = last;
  if (!sameAsLast || !metrics) {
    loadCheckpoint(file, module.model);
    metrics = await trainer.test(module, testLoader);
    // Printed 1-based like the progress bar, the epoch lines and the learning curves; the summary's
    // `best_epoch` stays 0-based, as in the checkpoint's file name (`epoch=N-…`).
    err(`best checkpoint (epoch ${epoch === undefined ? '?' : epoch + 1}): test_acc ${metrics.test_acc.toFixed(4)}`);
  }
  return { ...out, best_test_accuracy: metrics.test_acc, best_test_loss: metrics.test_loss };
}

/** Flags that change what a run trains on; a resume with other values could not continue the same run. */
const RESUME_FLAGS: Record<string, string> = {
  zoo_model: '--model',
  dataset: '--dataset',
  batch_size: '--batch-size',
  seed: '--seed',
  augment: '--augment',
  limit_train: '--limit-train',
  val_split: '--val-split',
  folds: '--folds',
  fold: '--fold',
  input_shape: '--image-size/--channels',
  optimizer: '--optimizer',
};

/** Refuses a resume whose data flags differ from the ones its checkpoint was written with, naming each. */
function checkResumeFlags(ckpt: string, now: Record<string, unknown>): void {
  const ck = readCheckpoint(ckpt);
  tf.dispose(checkpointTensors(ck));
  const then = ck.meta.model.hparams ?? {};
  const differ = Object.entries(RESUME_FLAGS)
    .filter(([k]) => k in then && JSON.stringify(then[k]) !== JSON.stringify(now[k]))
    .map(([k, flag]) => `${flag}: ${JSON.stringify(then[k])} in the checkpoint, ${JSON.stringify(now[k])} now`);
  if (differ.length > 0) {
    throw new ConfigError('--resume', 'the data flags the checkpoint was written with', differ.join('; '), 'resume with the same flags, or start a new run without --resume');
  }
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
