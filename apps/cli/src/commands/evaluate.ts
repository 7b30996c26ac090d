import { parseArgs } from 'node:util';
import { DataFormatError } from '@kiln/core';
import { DataLoader, fashionMnist, normalizeDataset } from '@kiln/data';
import { createModel, MODELS } from '@kiln/zoo';
import { ClassificationModule, createTrainer, loadCheckpoint, readCheckpoint } from '@kiln/trainer';
import { choiceArg, intArg } from '../args.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';
import type { CliCheckpointInfo } from './train.js';

export const EVALUATE_USAGE = `usage: kiln evaluate --weights CKPT --dataset fashion-mnist [options]

Evaluates a checkpoint written by \`kiln train\` on a dataset's test split and prints the result as JSON.

options:
  --weights CKPT        checkpoint file (e.g. runs/<run>/checkpoints/best.ckpt)
  --dataset NAME        fashion-mnist
  --model NAME          zoo model (default: the one recorded in the checkpoint)
  --batch-size B        examples per batch (default 256)
  --data-dir D          directory with the dataset files
  --backend NAME        auto, wasm, cpu, … (default auto)
`;

export interface EvaluateSummary {
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
    options: { weights: { type: 'string' }, dataset: { type: 'string' }, model: { type: 'string' }, 'batch-size': { type: 'string' }, 'data-dir': { type: 'string' }, backend: { type: 'string' } },
    strict: true,
  });
  if (!values.weights) throw new UsageError('--weights is required', `e.g. --weights runs/<run>/checkpoints/best.ckpt\n${EVALUATE_USAGE}`);
  const dataset = choiceArg('dataset', values.dataset ?? 'fashion-mnist', 'fashion-mnist', ['fashion-mnist'] as const);
  const batchSize = intArg('batch-size', values['batch-size'], 256);
  const choice = await cliBackends().use(values.backend ?? 'auto');
  err(`backend: ${choice.name} — ${choice.info.device} (${choice.reason})`);

  // The metadata first, to know which model to build.
  const probe = readCheckpoint(values.weights);
  for (const t of [...Object.values(probe.modelState), ...Object.values(probe.optimizerSlots)]) t.dispose();
  const info = probe.meta.cli as CliCheckpointInfo | undefined;
  const modelName = choiceArg('model', values.model ?? info?.model, 'lenet5', Object.keys(MODELS));
  if (!info?.normalization) {
    throw new DataFormatError(values.weights, 'checkpoint has no input normalization recorded', { hint: 'evaluate checkpoints written by `kiln train`' });
  }
  const model = createModel(modelName, { numClasses: info.numClasses ?? 10, inChannels: MODELS[modelName].inputShape[2] });
  const meta = loadCheckpoint(values.weights, model);
  const test = normalizeDataset(await fashionMnist('test', { dataDir: values['data-dir'] }), info.normalization);
  const module = new ClassificationModule(model);
  const metrics = await createTrainer({}).test(module, new DataLoader(test, { batchSize }));
  model.dispose();
  return {
    model: modelName,
    dataset,
    weights: values.weights,
    backend: choice.name,
    epoch: meta.epoch,
    examples: test.length,
    test_accuracy: metrics.test_acc,
    test_loss: metrics.test_loss,
  };
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
