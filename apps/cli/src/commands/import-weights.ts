import { parseArgs } from 'node:util';
import { readFileChecked, writeFileAtomic } from '@kiln/core/node';
import path from 'node:path';
import { DataFormatError } from '@kiln/core';
import { decodeWeightFile, loadPretrained, loadTfjsLayersWeights, modelEntry, saveWeights, selectStateDict, type ZooOptions } from '@kiln/zoo';
import { choiceArg } from '../args.js';
import { startRun } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';
import { KNOWN_WEIGHTS, resolveWeightsFile } from '../pretrained-file.js';
import { MODEL_FLAGS, MODEL_FLAGS_USAGE, modelOptionsFromFlags } from './summary.js';

export const IMPORT_WEIGHTS_USAGE = `usage: kiln import-weights --model NAME --from torchvision|tfjs-layers --weights FILE|NAME --out W.ckpt [options]

Converts another framework's weights into a Kiln weight file (safetensors in Kiln's NHWC layouts,
with the model's name, options and, for published torchvision weights, their preprocessing in its
metadata, ready for 'kiln predict').

options:
${MODEL_FLAGS_USAGE}
  --from FORMAT         torchvision: a PyTorch state dict, as torch.save writes it (.pth/.pt; read
                        without running its pickle) or as .safetensors (torchvision names);
                        tfjs-layers: a model.json with its weight shards beside it
  --weights FILE|NAME   the file to import, or (with --from torchvision) a published torchvision
                        weight name, downloaded (SHA-256 checked) unless torch.hub or Kiln already
                        has it: ${KNOWN_WEIGHTS.join(', ')}
  --out FILE            where to write the Kiln weight file
`;

/** Reads a file the user named: regular files only (no FIFOs or devices), missing ones named in a typed error. */
export function readFileOrExplain(file: string, what: string): Uint8Array {
  return readFileChecked(file, { what });
}

export { writeFileAtomic };

export const importWeightsCommand: Command = {
  name: 'import-weights',
  summary: 'convert torchvision (.pth, .safetensors, or by name) or tfjs-layers weights into a Kiln weight file',
  usage: IMPORT_WEIGHTS_USAGE,
  async run(argv, out, err) {
    const { values } = parseArgs({ args: argv, options: { ...MODEL_FLAGS, from: { type: 'string' }, weights: { type: 'string' }, out: { type: 'string' } }, strict: true });
    if (!values.from) throw new UsageError('--from is required', IMPORT_WEIGHTS_USAGE);
    const from = choiceArg('from', values.from, 'torchvision', ['torchvision', 'tfjs-layers'] as const);
    if (!values.weights) throw new UsageError('--weights is required', IMPORT_WEIGHTS_USAGE);
    if (!values.out) throw new UsageError('--out is required', IMPORT_WEIGHTS_USAGE);
    // A published weight name picks its model unless --model says otherwise.
    const resolved = from === 'torchvision' ? await resolveWeightsFile(values.weights, { log: err }) : { file: values.weights, known: undefined };
    if (!values.model && resolved.known) values.model = resolved.known.model;
    const { name, options } = modelOptionsFromFlags(values);
    await startRun(values.backend, err);
    const weightFile = resolved.file;
    const bytes = readFileOrExplain(weightFile, 'weight file');
    const entry = modelEntry(name);
    let numClasses = options.numClasses;
    if (from === 'torchvision' && numClasses === undefined) {
      // Without --num-classes, the head's size comes from the file (PyTorch stores it [classes, features]).
      const probe = entry.create({ ...options, numClasses: 1, skipInit: true });
      try {
        const keys = [...probe.namedParameters().map(([k]) => k), ...probe.namedBuffers().map(([k]) => k)];
        numClasses = selectStateDict(decodeWeightFile(bytes, weightFile).tensors, keys).tensors[`${probe.headPath}.weight`]?.shape[0];
      } finally {
        probe.dispose();
      }
    }
    const model = entry.create({ ...options, numClasses, skipInit: true });
    try {
      const metadata: Record<string, string> = { model: name, source: from };
      const recorded: ZooOptions = { ...options, numClasses: model.numClasses };
      if (from === 'torchvision') {
        const result = await loadPretrained(model, bytes, { file: weightFile });
        for (const note of result.notes) err(`${weightFile}: ${note}`);
        if ('transformInput' in model && model.transformInput === true) recorded.transformInput = true;
        metadata.format_in = result.format;
        metadata.sha256 = result.sha256;
        if (result.weights) {
          metadata.torchvision_weights = result.weights.torchvision;
          metadata.preprocessing = JSON.stringify(result.preprocessing);
          err(`${weightFile}: ${result.weights.torchvision}; preprocessing: resize ${result.preprocessing!.resizeSize}, centre crop ${result.preprocessing!.size.join('×')}, mean ${result.preprocessing!.mean.join('/')}, std ${result.preprocessing!.std.join('/')}`);
        } else if (resolved.known) {
          throw new DataFormatError(weightFile, `the file's SHA-256 does not match ${resolved.known.torchvision}`, { expected: `${resolved.known.sha256}…`, found: result.sha256 });
        }
      } else {
        const json = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
        const dir = path.dirname(weightFile);
        loadTfjsLayersWeights(model, json, (p) => readFileOrExplain(path.join(dir, p), 'weight shard'), { file: weightFile });
      }
      metadata.options = JSON.stringify(recorded);
      writeFileAtomic(values.out, await saveWeights(model, metadata));
      const result = {
        model: name,
        from,
        weights: weightFile,
        out: values.out,
        parameters: model.numParameters(),
        num_classes: model.numClasses,
        ...(metadata.preprocessing ? { torchvision_weights: metadata.torchvision_weights, preprocessing: JSON.parse(metadata.preprocessing) as unknown } : {}),
      };
      err(`wrote ${values.out}: ${name}, ${result.parameters.toLocaleString('en-US')} parameters, ${result.num_classes} classes`);
      out(JSON.stringify(result));
    } finally {
      model.dispose();
    }
    return 0;
  },
};
