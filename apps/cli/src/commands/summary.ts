import { parseArgs } from 'node:util';
import { ConfigError } from '@kiln/core';
import { MODELS, formatSummary, modelEntry, summarize, type ZooModel, type ZooOptions } from '@kiln/zoo';
import { intArg } from '../args.js';
import { startRun } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';

/** Flags every command that builds a zoo model accepts (parseArgs option specs). */
export const MODEL_FLAGS = {
  model: { type: 'string' },
  'num-classes': { type: 'string' },
  'in-channels': { type: 'string' },
  'small-input': { type: 'boolean' },
  'aux-logits': { type: 'boolean' },
  lrn: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export const MODEL_FLAGS_USAGE = `  --model NAME          ${Object.keys(MODELS).join(', ')}
  --num-classes N       classes of the head (default: the model's)
  --in-channels C       input channels (default: the model's)
  --small-input         ResNet: 3×3 stem without max-pool for 28–32 px images
  --aux-logits          GoogLeNet / Inception v3: build the auxiliary heads
  --lrn                 AlexNet: local response normalisation as in the paper
  --backend NAME        auto, wasm, cpu, … (default auto)`;

interface ModelFlagValues {
  model?: string;
  'num-classes'?: string;
  'in-channels'?: string;
  'small-input'?: boolean;
  'aux-logits'?: boolean;
  lrn?: boolean;
}

/** The zoo options the model flags ask for; `defaults` fill what the flags leave out (e.g. from a weight file). */
export function modelOptionsFromFlags(values: ModelFlagValues, defaults: ZooOptions = {}): { name: string; options: ZooOptions } {
  if (!values.model) throw new UsageError('--model is required', `one of: ${Object.keys(MODELS).join(', ')}`);
  const entry = modelEntry(values.model);
  const options: ZooOptions = { ...defaults };
  if (values['num-classes'] !== undefined) options.numClasses = intArg('num-classes', values['num-classes'], 0);
  options.inChannels = values['in-channels'] !== undefined ? intArg('in-channels', values['in-channels'], 0) : (options.inChannels ?? entry.inputShape[2]);
  if (values['small-input']) options.smallInput = true;
  if (values['aux-logits']) options.auxLogits = true;
  if (values.lrn) options.lrn = true;
  return { name: values.model, options };
}

/** Parses `224x224x3` (H×W×C) or `224x224` (channels from the model). */
export function parseInputShape(text: string, channels: number): [number, number, number] {
  const parts = text.toLowerCase().split('x').map(Number);
  if ((parts.length !== 2 && parts.length !== 3) || parts.some((n) => !Number.isInteger(n) || n < 1)) throw new ConfigError('--input', 'HxWxC or HxW, e.g. 224x224x3', text);
  return [parts[0], parts[1], parts[2] ?? channels];
}

export const SUMMARY_USAGE = `usage: kiln summary --model NAME [--input HxWxC] [--json] [options]

Prints each layer's path, type, output shape and parameters, then the totals (parameters,
multiply-adds) for one image.

options:
${MODEL_FLAGS_USAGE}
  --input HxWxC         input size (default: the model's, e.g. 224x224x3)
  --json                print the summary as one JSON object instead of a table
`;

export const summaryCommand: Command = {
  name: 'summary',
  summary: "print a zoo model's layers, output shapes, parameters and multiply-adds",
  usage: SUMMARY_USAGE,
  async run(argv, out, err) {
    const { values } = parseArgs({ args: argv, options: { ...MODEL_FLAGS, input: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
    const { name, options } = modelOptionsFromFlags(values);
    const entry = modelEntry(name);
    const input = values.input ? parseInputShape(values.input, options.inChannels ?? entry.inputShape[2]) : ([entry.inputShape[0], entry.inputShape[1], options.inChannels ?? entry.inputShape[2]] as [number, number, number]);
    if (Math.min(input[0], input[1]) < entry.minInputSize) throw new ConfigError('--input', `at least ${entry.minInputSize}x${entry.minInputSize} for ${name}`, values.input);
    await startRun(values.backend, err);
    // Shapes and counts do not depend on the values, so skip the random init.
    const model: ZooModel = entry.create({ ...options, skipInit: true });
    try {
      const s = summarize(model, input);
      if (values.json) out(JSON.stringify({ model: name, ...s }));
      else for (const l of formatSummary(s)) out(l);
    } finally {
      model.dispose();
    }
    return 0;
  },
};
