import { parseArgs } from 'node:util';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NotFoundError, decodeSafetensors } from '@kiln/core';
import { loadTfjsLayersWeights, loadTorchvisionWeights, modelEntry, saveWeights, type ZooOptions } from '@kiln/zoo';
import { choiceArg } from '../args.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';
import { MODEL_FLAGS, MODEL_FLAGS_USAGE, modelOptionsFromFlags } from './summary.js';

export const IMPORT_WEIGHTS_USAGE = `usage: kiln import-weights --model NAME --from torchvision|tfjs-layers --weights FILE --out W.ckpt [options]

Converts another framework's weights into a Kiln weight file (safetensors in Kiln's NHWC layouts,
with the model's name and options in its metadata, ready for 'kiln predict').

options:
${MODEL_FLAGS_USAGE}
  --from FORMAT         torchvision: a PyTorch state dict saved as .safetensors (torchvision names);
                        tfjs-layers: a model.json with its weight shards beside it
  --weights FILE        the file to import
  --out FILE            where to write the Kiln weight file
`;

export function readFileOrExplain(file: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${what} '${file}'`, [path.resolve(file)]);
    throw e;
  }
}

/** Writes bytes atomically (temporary file, then rename) so a crash never leaves half a file. */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

export const importWeightsCommand: Command = {
  name: 'import-weights',
  summary: 'convert torchvision (safetensors) or tfjs-layers weights into a Kiln weight file',
  usage: IMPORT_WEIGHTS_USAGE,
  async run(argv, out, err) {
    const { values } = parseArgs({ args: argv, options: { ...MODEL_FLAGS, from: { type: 'string' }, weights: { type: 'string' }, out: { type: 'string' } }, strict: true });
    if (!values.from) throw new UsageError('--from is required', IMPORT_WEIGHTS_USAGE);
    const from = choiceArg('from', values.from, 'torchvision', ['torchvision', 'tfjs-layers'] as const);
    if (!values.weights) throw new UsageError('--weights is required', IMPORT_WEIGHTS_USAGE);
    if (!values.out) throw new UsageError('--out is required', IMPORT_WEIGHTS_USAGE);
    const choice = await cliBackends().use(values.backend ?? 'auto');
    err(`backend: ${choice.name} — ${choice.info.device}`);
    const bytes = readFileOrExplain(values.weights, 'weight file');
    const { name, options } = modelOptionsFromFlags(values);
    const entry = modelEntry(name);
    let numClasses = options.numClasses;
    let tensors: ReturnType<typeof decodeSafetensors>['tensors'] | undefined;
    if (from === 'torchvision') {
      tensors = decodeSafetensors(bytes, values.weights).tensors;
      // Without --num-classes, the head's size comes from the file (PyTorch stores it [classes, features]).
      if (numClasses === undefined) {
        const probe = entry.create({ ...options, numClasses: 1, skipInit: true });
        numClasses = tensors[`${probe.headPath}.weight`]?.shape[0];
        probe.dispose();
      }
    }
    const finalOptions: ZooOptions = { ...options, numClasses, skipInit: true };
    const model = entry.create(finalOptions);
    try {
      if (tensors) loadTorchvisionWeights(model, tensors, { file: values.weights });
      else {
        const json = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
        const dir = path.dirname(values.weights);
        loadTfjsLayersWeights(model, json, (p) => readFileOrExplain(path.join(dir, p), 'weight shard'), { file: values.weights });
      }
      const metadata: Record<string, string> = { model: name, source: from, options: JSON.stringify({ ...options, numClasses: model.numClasses }) };
      writeFileAtomic(values.out, await saveWeights(model, metadata));
      const result = { model: name, from, weights: values.weights, out: values.out, parameters: model.numParameters(), num_classes: model.numClasses };
      err(`wrote ${values.out}: ${name}, ${result.parameters.toLocaleString('en-US')} parameters, ${result.num_classes} classes`);
      out(JSON.stringify(result));
    } finally {
      model.dispose();
    }
    return 0;
  },
};
