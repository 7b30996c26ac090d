import { parseArgs } from 'node:util';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, Rng, liveTensors, manualSeed } from '@kiln/core';
import { DataLoader, type Dataset, type Example } from '@kiln/data';
import { ClassificationModule, ConsoleLogger, CsvLogger, ModelCheckpoint, ProgressBar, callback, createTrainer, loadCheckpoint, logger } from '@kiln/trainer';
import type { ZooModel } from '@kiln/zoo';
import { floatArg, intArg } from '../args.js';
import { startRun } from '../backends.js';
import { UsageError } from '../errors.js';
import { DATA_OPTIONS, DATA_USAGE, flagsExpecting, inputPipeline, inputStats, loadData, preprocessingOf, sampleDataset, selectClasses, splitValidation } from '../datasets.js';
import { identifyPretrained, loadPretrainedWeights, modelFor, readCliInfo, recordInfo, type CliCheckpointInfo, type ResolvedInfo } from '../checkpoint-info.js';
import type { Command } from '../command.js';

export const FINE_TUNE_USAGE = `usage: kiln fine-tune --from RUN/checkpoints/best.ckpt [--dataset SPEC] [options]
       kiln fine-tune --pretrained FILE --model NAME --dataset SPEC [options]
       kiln fine-tune --scratch --model NAME --dataset SPEC [options]

Trains a zoo model on some classes of a dataset, starting from a checkpoint written by 'kiln train'
or 'kiln fine-tune', from pretrained weights (e.g. torchvision's .pth), or, with --scratch, from
random weights — the baseline to compare with.
When the classes differ in number from the checkpoint's head, the head is replaced by a fresh one.

options:
  --from CKPT           checkpoint to start from (its model, input size, channels and scaling are
                        reused; the dataset defaults to the one it was trained on)
  --pretrained FILE     start from these weights (needs --model): .pth/.pt, .safetensors, Kiln weights or a
                        checkpoint, or a torchvision weight name such as resnet18; published torchvision
                        weights bring their preprocessing (size, mean/std)
  --scratch             start from random weights instead (needs --model)
  --model NAME          zoo model (with --pretrained or --scratch; otherwise read from the checkpoint)
${DATA_USAGE}
  --classes LIST        classes to train on, relabelled 0..k-1: "5-9" or "0,2,4" (default all)
  --freeze-backbone     train the head only
  --new-head            replace the head even when the number of classes is unchanged
  --epochs N            epochs (default 2)
  --batch-size B        examples per batch (default 64)
  --lr X                Adam learning rate (default 0.001)
  --limit-train N       use N training examples of the chosen classes, drawn at random under --seed
  --val-split X         fraction (or count) of them held out for validation (default 0.1; a folder's
                        val/ sub-folder is used instead when it has one)
  --seed S              seed for the new head, shuffling and the split (default 0)
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

export interface FineTuneSummary {
  model: string;
  from: string | null;
  pretrained: string | null;
  /** Class indices of the dataset trained on, and their names (the new head's outputs, in order). */
  classes: number[];
  class_names: string[];
  freeze_backbone: boolean;
  new_head: boolean;
  epochs: number;
  train_examples: number;
  val_examples: number;
  parameters: number;
  trainable_parameters: number;
  val_accuracy: number | null;
  test_accuracy: number | null;
  test_loss: number | null;
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
      pretrained: { type: 'string' },
      model: { type: 'string' },
      ...DATA_OPTIONS,
      classes: { type: 'string' },
      'freeze-backbone': { type: 'boolean' },
      'new-head': { type: 'boolean' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      'limit-train': { type: 'string' },
      'val-split': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
    },
    strict: true,
  });
  if ([values.from, values.pretrained, values.scratch].filter(Boolean).length !== 1) throw new UsageError('give exactly one of --from CKPT, --pretrained FILE and --scratch', FINE_TUNE_USAGE);
  if (!values.from && !values.model) throw new UsageError(`${values.scratch ? '--scratch' : '--pretrained'} needs --model`, FINE_TUNE_USAGE);
  const epochs = intArg('epochs', values.epochs, 2);
  const batchSize = intArg('batch-size', values['batch-size'], 64);
  const lr = floatArg('lr', values.lr, 1e-3);
  const seed = intArg('seed', values.seed, 0, 0);
  const valSplit = floatArg('val-split', values['val-split'], 0.1, (n) => n >= 0);
  const limitTrain = values['limit-train'] === undefined ? undefined : intArg('limit-train', values['limit-train'], 1);
  const outDir = values.out ?? path.join('runs', `fine-tune-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);

  const run = await startRun(values.backend, err);

  // The starting point: a checkpoint's model, input size and scaling, or random weights.
  const from: ResolvedInfo | undefined = values.from ? readCliInfo(values.from).info : undefined;
  if (from && values.model && values.model !== from.model) throw new ConfigError('--model', `the checkpoint's model (${from.model}) or nothing`, values.model);
  const pre = from?.preprocessing;
  // Published weights expect their own input preparation; flags given on the command line still win.
  const pretrained = values.pretrained ? await identifyPretrained(values.pretrained, err) : undefined;
  const known = pretrained?.known?.preprocessing;
  const expected = pre ?? (known ? { size: known.size, channels: 3, resize: 'shorter-side' as const } : undefined);
  const data = await loadData(expected ? flagsExpecting(values, expected) : values, { onWarning: err });
  let owned: ZooModel | undefined;
  try {
    if (from && data.inputShape.some((v, i) => v !== from.inputShape[i])) {
      throw new ConfigError('--image-size/--channels', `input ${from.inputShape.join('×')}, as the checkpoint's backbone was built for`, data.inputShape.join('×'));
    }
    manualSeed(seed);
    const modelName = from?.model ?? (values.model as string);
    const classes = parseClasses(values.classes, data.classes.length);
    const model = from ? modelFor(from, { skipInit: true }) : modelFor({ model: modelName, inputShape: data.inputShape, numClasses: classes.length });
    owned = model;
    if (from) {
      loadCheckpoint(values.from as string, model);
      err(`from: ${values.from} (${modelName}, ${model.numClasses} classes)`);
    } else if (pretrained) await loadPretrainedWeights(model, pretrained, err);

    const names = classes.map((c) => data.classes[c]);
    let trainSet: Dataset<Example> = selectClasses(data.train, classes, data.classes);
    if (limitTrain !== undefined) trainSet = sampleDataset(trainSet, limitTrain, seed);
    const [trainPart, valSet] = splitValidation(trainSet, data.val ? selectClasses(data.val, classes, data.classes) : undefined, valSplit, seed);
    trainSet = trainPart;
    const testSet = data.test ? selectClasses(data.test, classes, data.classes) : undefined;
    // Keep the scaling the backbone was trained with; a fresh model gets this training split's.
    const given = pre ?? known;
    const stats = given ? { mean: [...given.mean], std: [...given.std] } : await inputStats(data, trainSet, seed);
    const preprocessing = preprocessingOf(data, stats);
    const evalTransform = inputPipeline(data.convert, stats);
    err(`data: classes ${classes.join(',')}: train ${trainSet.length}, val ${valSet?.length ?? 0}, test ${testSet?.length ?? 0}`);

    const newHead = values.scratch === true || values['new-head'] === true || model.numClasses !== classes.length;
    if (newHead) model.replaceHead(classes.length, { rng: new Rng(seed) });
    if (values['freeze-backbone']) model.freezeBackbone();
    err(`model: ${modelName}, ${model.numParameters().toLocaleString('en-US')} parameters, ${model.numParameters({ trainableOnly: true }).toLocaleString('en-US')} trainable${newHead ? ', new head' : ''}`);

    const module = new ClassificationModule(model, { lr });
    mkdirSync(outDir, { recursive: true });
    const ckInfo: CliCheckpointInfo & { classIndices: number[] } = {
      model: modelName,
      dataset: preprocessing.dataset,
      numClasses: classes.length,
      classes: names,
      classIndices: classes,
      inputShape: data.inputShape,
      preprocessing,
      normalization: stats,
    };
    const trainer = createTrainer({
      container: run.container,
      maxEpochs: epochs,
      seed,
      plugins: [
        callback(new ProgressBar()),
        callback(recordInfo(ckInfo)),
        callback(new ModelCheckpoint({ dirpath: path.join(outDir, 'checkpoints'), monitor: valSet ? 'val_acc' : 'train_loss', saveTopK: 1, saveLast: true, everyNEpochs: 1 })),
        logger(new CsvLogger({ dir: outDir })),
        logger(new ConsoleLogger(err)),
      ],
    });
    const before = liveTensors();
    const loader = (ds: Dataset<Example>, train: boolean) => new DataLoader(ds, { batchSize: train ? batchSize : 256, shuffle: train, seed, exampleShape: data.shape, transform: evalTransform });
    await trainer.fit(module, loader(trainSet, true), valSet ? loader(valSet, false) : undefined);
    const testMetrics = testSet ? await trainer.test(module, loader(testSet, false)) : undefined;
    trainer.optimizerConfig?.optimizer.dispose();
    const leaked = liveTensors() - before;
    if (leaked > 0) err(`warning: ${leaked} tensors were not released during fine-tuning`);

    const summary: FineTuneSummary = {
      model: modelName,
      from: values.from ?? null,
      pretrained: values.pretrained ?? null,
      classes,
      class_names: names,
      freeze_backbone: values['freeze-backbone'] === true,
      new_head: newHead,
      epochs,
      train_examples: trainSet.length,
      val_examples: valSet?.length ?? 0,
      parameters: model.numParameters(),
      trainable_parameters: model.numParameters({ trainableOnly: true }),
      val_accuracy: trainer.callbackMetrics.val_acc ?? null,
      test_accuracy: testMetrics?.test_acc ?? null,
      test_loss: testMetrics?.test_loss ?? null,
      wall_seconds: (performance.now() - started) / 1000,
      out: outDir,
    };
    const file = path.join(outDir, 'summary.json');
    writeFileSync(`${file}.tmp-${process.pid}`, JSON.stringify(summary, null, 2) + '\n');
    renameSync(`${file}.tmp-${process.pid}`, file);
    return summary;
  } finally {
    owned?.dispose();
    await data.close();
  }
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
