import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, DataFormatError } from '@kiln/core';
import { DataLoader } from '@kiln/data';
import { ClassificationModule, createTrainer, loadCheckpoint } from '@kiln/trainer';
import { intArg } from '../args.js';
import { startRun } from '../backends.js';
import { UsageError } from '../errors.js';
import { DATA_OPTIONS, DATA_USAGE, flagsExpecting, inputPipeline, loadData } from '../datasets.js';
import { modelFor, readCliInfo } from '../checkpoint-info.js';
import { testReport, type TestReport } from '../test-report.js';
import type { Command } from '../command.js';

export const EVALUATE_USAGE = `usage: kiln evaluate --weights CKPT [--dataset SPEC] [options]

Evaluates a checkpoint written by \`kiln train\` on a dataset's test split and prints the result as JSON.
The dataset, image size, channels and normalisation default to those the checkpoint records.

options:
  --weights CKPT        checkpoint file (e.g. runs/<run>/checkpoints/best.ckpt)
${DATA_USAGE}
  --batch-size B        examples per batch (default 256)
  --backend NAME        auto, wasm, cpu, … (default auto)
  --out DIR             where to write the confusion matrix PNG (default: the checkpoint's run directory)
`;

export interface EvaluateSummary extends TestReport {
  model: string;
  dataset: string;
  weights: string;
  backend: string;
  epoch: number;
  examples: number;
  test_accuracy: number;
  test_loss: number;
}

export async function evaluate(argv: string[], err: (line: string) => void): Promise<EvaluateSummary> {
  const { values } = parseArgs({
    args: argv,
    options: { weights: { type: 'string' }, ...DATA_OPTIONS, 'batch-size': { type: 'string' }, backend: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  if (!values.weights) throw new UsageError('--weights is required', `e.g. --weights runs/<run>/checkpoints/best.ckpt\n${EVALUATE_USAGE}`);
  const batchSize = intArg('batch-size', values['batch-size'], 256);
  const run = await startRun(values.backend, err);
  const choice = run.backend;

  // The metadata first, to know which model to build and how its input was prepared.
  const { info } = readCliInfo(values.weights);
  const pre = info.preprocessing;
  const data = await loadData(flagsExpecting(values, pre), { splits: ['test'], onWarning: err });
  try {
    if (!data.test) throw new DataFormatError(values.dataset ?? pre.dataset, 'the dataset has no test split to evaluate on', { hint: 'a folder needs a test/ sub-folder; a CSV a *test* file beside its *train* file' });
    if (data.inputShape.some((v, i) => v !== info.inputShape[i])) {
      throw new ConfigError('--image-size/--channels', `input ${info.inputShape.join('×')}, as ${values.weights} was trained on`, data.inputShape.join('×'));
    }
    if (data.classes.length !== info.numClasses) throw new DataFormatError(values.dataset ?? pre.dataset, `the dataset has ${data.classes.length} classes, the checkpoint's model ${info.numClasses}`);
    if (data.classes.some((c, i) => c !== info.classes[i])) err(`warning: class names differ from the checkpoint's (${info.classes.slice(0, 5).join(', ')}, …)`);
    const model = modelFor(info, { skipInit: true });
    const meta = loadCheckpoint(values.weights, model);
    const module = new ClassificationModule(model);
    const loader = new DataLoader(data.test, { batchSize, exampleShape: data.shape, transform: inputPipeline(data.convert, { mean: pre.mean, std: pre.std }) });
    const metrics = await createTrainer({ container: run.container }).test(module, loader);
    // Beside the run the checkpoint belongs to (OUT/checkpoints/x.ckpt → OUT), named after the checkpoint.
    const ckptDir = path.dirname(values.weights);
    const dir = values.out ?? (path.basename(ckptDir) === 'checkpoints' ? path.dirname(ckptDir) : ckptDir);
    const report = await testReport(module, loader, info.classes, path.join(dir, `confusion_matrix-${path.basename(values.weights, '.ckpt')}.png`), [], meta.globalStep, err);
    model.dispose();
    return {
      model: info.model,
      dataset: values.dataset ?? pre.dataset,
      weights: values.weights,
      backend: choice.name,
      epoch: meta.epoch,
      examples: data.test.length,
      test_accuracy: metrics.test_acc,
      test_loss: metrics.test_loss,
      ...report,
    };
  } finally {
    await data.close();
  }
}

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'evaluate a checkpoint on a dataset and print test accuracy as JSON',
  usage: EVALUATE_USAGE,
  async run(argv, out, err) {
    const summary = await evaluate(argv, err);
    out(JSON.stringify(summary));
    return 0;
  },
};
