import { parseArgs } from 'node:util';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tf, ConfigError, DataFormatError, Rng, liveTensors, manualSeed } from '@kiln/core';
import { ArrayDataset, DataLoader, channelStats, fashionMnist, holdOut, normalizeDataset } from '@kiln/data';
import { createModel, modelEntry } from '@kiln/zoo';
import { ClassificationModule, ConsoleLogger, CsvLogger, ModelCheckpoint, ProgressBar, callback, createTrainer, logger, readCheckpoint, type Callback } from '@kiln/trainer';
import { floatArg, intArg } from '../args.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';
import type { CliCheckpointInfo } from './train.js';

export const FINE_TUNE_USAGE = `usage: kiln fine-tune --from RUN/checkpoints/best.ckpt --dataset fashion-mnist [options]
       kiln fine-tune --scratch --model NAME --dataset fashion-mnist [options]

Trains a zoo model on some classes of a dataset, starting from a checkpoint written by 'kiln train'
or 'kiln fine-tune' (or, with --scratch, from random weights — the baseline to compare with).
When the classes differ in number from the checkpoint's head, the head is replaced by a fresh one.

options:
  --from CKPT           checkpoint to start from (its model, classes and input scaling are reused)
  --scratch             start from random weights instead (needs --model)
  --model NAME          zoo model (with --scratch; otherwise read from the checkpoint)
  --dataset NAME        fashion-mnist
  --classes LIST        classes to train on, relabelled 0..k-1: "5-9" or "0,2,4" (default all)
  --freeze-backbone     train the head only
  --new-head            replace the head even when the number of classes is unchanged
  --epochs N            epochs (default 2)
  --batch-size B        examples per batch (default 64)
  --lr X                Adam learning rate (default 0.001)
  --limit-train N       use the first N training examples of the chosen classes only
  --val-split X         fraction (or count) of them held out for validation (default 0.1)
  --seed S              seed for the new head, shuffling and the split (default 0)
  --data-dir D          directory with the dataset files
  --out DIR             output directory (default runs/fine-tune-<timestamp>); checkpoints in DIR/checkpoints
  --backend NAME        auto, wasm, cpu, … (default auto)
`;

/** Parses "5-9" or "0,2,4" into sorted distinct class indices below `n`. */
export function parseClasses(text: string | undefined, n: number): number[] {
  if (text === undefined) return Array.from({ length: n }, (_, i) => i);
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || hi < lo || hi >= n) throw new ConfigError('--classes', `class indices in 0..${n - 1} as a range "5-9" or a list "0,2,4"`, text);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** The examples of `classes`, relabelled by their position in `classes`. */
export function selectClasses(ds: ArrayDataset, classes: number[]): ArrayDataset {
  const position = new Map(classes.map((c, i) => [c, i]));
  const indices: number[] = [];
  for (let i = 0; i < ds.length; i++) if (position.has(ds.y[i])) indices.push(i);
  const sub = ds.subset(indices);
  const y = Int32Array.from(sub.y, (c) => position.get(c)!);
  return new ArrayDataset(sub.x, y, sub.shape, classes.map((c) => ds.classes?.[c] ?? String(c)));
}

export interface FineTuneSummary {
  model: string;
  from: string | null;
  classes: number[];
  freeze_backbone: boolean;
  new_head: boolean;
  epochs: number;
  train_examples: number;
  val_examples: number;
  parameters: number;
  trainable_parameters: number;
  val_accuracy: number | null;
  test_accuracy: number;
  test_loss: number;
  wall_seconds: number;
  out: string;
}

export async function fineTune(argv: string[], err: (line: string) => void): Promise<FineTuneSummary> {
  const started = performance.now();
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      scratch: { type: 'boolean' },
      model: { type: 'string' },
      dataset: { type: 'string' },
      classes: { type: 'string' },
      'freeze-backbone': { type: 'boolean' },
      'new-head': { type: 'boolean' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      'limit-train': { type: 'string' },
      'val-split': { type: 'string' },
      seed: { type: 'string' },
      'data-dir': { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
    },
    strict: true,
  });
  if (!values.from === !values.scratch) throw new UsageError('give exactly one of --from CKPT and --scratch', FINE_TUNE_USAGE);
  if ((values.dataset ?? 'fashion-mnist') !== 'fashion-mnist') throw new ConfigError('--dataset', 'fashion-mnist', values.dataset);
  const epochs = intArg('epochs', values.epochs, 2);
  const batchSize = intArg('batch-size', values['batch-size'], 64);
  const lr = floatArg('lr', values.lr, 1e-3);
  const seed = intArg('seed', values.seed, 0, 0);
  const valSplit = floatArg('val-split', values['val-split'], 0.1, (n) => n >= 0);
  const limitTrain = values['limit-train'] === undefined ? undefined : intArg('limit-train', values['limit-train'], 1);
  const outDir = values.out ?? path.join('runs', `fine-tune-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);

  const choice = await cliBackends().use(values.backend ?? 'auto');
  err(`backend: ${choice.name} — ${choice.info.device} (${choice.reason})`);

  // The starting point: a checkpoint's model and input scaling, or random weights.
  manualSeed(seed);
  let info: CliCheckpointInfo | undefined;
  let modelName: string;
  let model;
  if (values.from) {
    const ck = readCheckpoint(values.from);
    try {
      info = ck.meta.cli as CliCheckpointInfo | undefined;
      modelName = values.model ?? info?.model ?? '';
      if (!modelName) throw new DataFormatError(values.from, 'the checkpoint does not say which zoo model it holds', { hint: 'pass --model NAME' });
      const entry = modelEntry(modelName);
      const probe = entry.create({ numClasses: 1, skipInit: true });
      const headWeight = ck.modelState[`${probe.headPath}.weight`];
      probe.dispose();
      model = entry.create({ numClasses: info?.numClasses ?? headWeight?.shape[1], inChannels: entry.inputShape[2], skipInit: true });
      model.loadStateDict(ck.modelState);
    } finally {
      tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
    }
    err(`from: ${values.from} (${modelName}, ${model.numClasses} classes)`);
  } else {
    if (!values.model) throw new UsageError('--scratch needs --model', FINE_TUNE_USAGE);
    modelName = values.model;
    model = createModel(modelName, { numClasses: 1, inChannels: modelEntry(modelName).inputShape[2] });
  }

  const [trainFull, testFull] = await Promise.all([fashionMnist('train', { dataDir: values['data-dir'] }), fashionMnist('test', { dataDir: values['data-dir'] })]);
  const classes = parseClasses(values.classes, trainFull.classes?.length ?? 10);
  let trainSet = selectClasses(trainFull, classes);
  if (limitTrain !== undefined) trainSet = trainSet.take(limitTrain);
  let valSet: ArrayDataset | undefined;
  if (valSplit > 0) [trainSet, valSet] = holdOut(trainSet, valSplit, seed);
  // Keep the scaling the backbone was trained with; a fresh model gets this training split's.
  const stats = info?.normalization ?? channelStats(trainSet);
  trainSet = normalizeDataset(trainSet, stats);
  if (valSet) valSet = normalizeDataset(valSet, stats);
  const testSet = normalizeDataset(selectClasses(testFull, classes), stats);
  err(`data: classes ${classes.join(',')}: train ${trainSet.length}, val ${valSet?.length ?? 0}, test ${testSet.length}`);

  const newHead = values.scratch || values['new-head'] === true || model.numClasses !== classes.length;
  if (newHead) model.replaceHead(classes.length, { rng: new Rng(seed) });
  if (values['freeze-backbone']) model.freezeBackbone();
  err(`model: ${modelName}, ${model.numParameters().toLocaleString('en-US')} parameters, ${model.numParameters({ trainableOnly: true }).toLocaleString('en-US')} trainable${newHead ? ', new head' : ''}`);

  const module = new ClassificationModule(model, { lr });
  mkdirSync(outDir, { recursive: true });
  const ckInfo: CliCheckpointInfo & { classes: number[] } = { model: modelName, dataset: 'fashion-mnist', numClasses: classes.length, normalization: stats, classes };
  const recordInfo: Callback = {
    onSaveCheckpoint: (_t, _m, checkpoint) => {
      checkpoint.cli = ckInfo;
    },
  };
  const trainer = createTrainer({
    maxEpochs: epochs,
    seed,
    plugins: [
      callback(new ProgressBar()),
      callback(recordInfo),
      callback(new ModelCheckpoint({ dirpath: path.join(outDir, 'checkpoints'), monitor: valSet ? 'val_acc' : 'train_loss', saveTopK: 1, saveLast: true, everyNEpochs: 1 })),
      logger(new CsvLogger({ dir: outDir })),
      logger(new ConsoleLogger(err)),
    ],
  });
  const before = liveTensors();
  await trainer.fit(module, new DataLoader(trainSet, { batchSize, shuffle: true, seed }), valSet ? new DataLoader(valSet, { batchSize: 256 }) : undefined);
  const testMetrics = await trainer.test(module, new DataLoader(testSet, { batchSize: 256 }));
  trainer.optimizerConfig?.optimizer.dispose();
  const leaked = liveTensors() - before;
  if (leaked > 0) err(`warning: ${leaked} tensors were not released during fine-tuning`);

  const summary: FineTuneSummary = {
    model: modelName,
    from: values.from ?? null,
    classes,
    freeze_backbone: values['freeze-backbone'] === true,
    new_head: newHead,
    epochs,
    train_examples: trainSet.length,
    val_examples: valSet?.length ?? 0,
    parameters: model.numParameters(),
    trainable_parameters: model.numParameters({ trainableOnly: true }),
    val_accuracy: trainer.callbackMetrics.val_acc ?? null,
    test_accuracy: testMetrics.test_acc,
    test_loss: testMetrics.test_loss,
    wall_seconds: (performance.now() - started) / 1000,
    out: outDir,
  };
  const file = path.join(outDir, 'summary.json');
  writeFileSync(`${file}.tmp-${process.pid}`, JSON.stringify(summary, null, 2) + '\n');
  renameSync(`${file}.tmp-${process.pid}`, file);
  model.dispose();
  return summary;
}

export const fineTuneCommand: Command = {
  name: 'fine-tune',
  summary: 'fine-tune a checkpoint on some classes of a dataset (new head, optionally frozen backbone)',
  usage: FINE_TUNE_USAGE,
  async run(argv, out, err) {
    const summary = await fineTune(argv, err);
    out(JSON.stringify(summary));
    return 0;
  },
};
