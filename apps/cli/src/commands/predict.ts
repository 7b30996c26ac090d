import { parseArgs } from 'node:util';
import { ConfigError, DataFormatError, decodeNpy, decodeSafetensors, encodeNpy, fromHost, tf, toHostAsync, type HostTensor } from '@kiln/core';
import { loadWeightTensors, modelEntry, type ZooOptions } from '@kiln/zoo';
import { choiceArg, intArg } from '../args.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';
import { readFileOrExplain, writeFileAtomic } from './import-weights.js';
import { MODEL_FLAGS, MODEL_FLAGS_USAGE, modelOptionsFromFlags } from './summary.js';

export const PREDICT_USAGE = `usage: kiln predict --model NAME --weights W.ckpt --input X.npy --output Y.npy [options]

Runs a zoo model in eval mode on a NumPy array of images and writes its outputs (logits) as .npy.

options:
${MODEL_FLAGS_USAGE}
  --weights FILE        Kiln weight file (from 'kiln import-weights', or a checkpoint's model weights)
  --input FILE          float32 images, [N, C, H, W] or [N, H, W, C] (see --layout)
  --layout L            nchw (PyTorch's order, default) or nhwc (Kiln's and TensorFlow's)
  --output FILE         where to write the [N, classes] float32 outputs
  --batch-size B        images per forward pass (default 32)
`;

/** Options a weight file records about the model it was written from (numClasses, smallInput, …). */
function recordedOptions(metadata: Record<string, string>, file: string): ZooOptions {
  if (!metadata.options) return {};
  try {
    return JSON.parse(metadata.options) as ZooOptions;
  } catch {
    throw new DataFormatError(file, 'the metadata entry "options" is not JSON', { found: metadata.options.slice(0, 80) });
  }
}

export const predictCommand: Command = {
  name: 'predict',
  summary: 'run a zoo model with saved weights on images from a .npy file and write the outputs as .npy',
  usage: PREDICT_USAGE,
  async run(argv, out, err) {
    const { values } = parseArgs({
      args: argv,
      options: { ...MODEL_FLAGS, weights: { type: 'string' }, input: { type: 'string' }, output: { type: 'string' }, layout: { type: 'string' }, 'batch-size': { type: 'string' } },
      strict: true,
    });
    for (const flag of ['weights', 'input', 'output'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required`, PREDICT_USAGE);
    const layout = choiceArg('layout', values.layout, 'nchw', ['nchw', 'nhwc'] as const);
    const batchSize = intArg('batch-size', values['batch-size'], 32);
    const choice = await cliBackends().use(values.backend ?? 'auto');
    err(`backend: ${choice.name} — ${choice.info.device}`);

    const weightFile = values.weights!;
    const { metadata, tensors } = decodeSafetensors(readFileOrExplain(weightFile, 'weight file'), weightFile);
    const { name, options } = modelOptionsFromFlags(values, recordedOptions(metadata, weightFile));
    if (metadata.model && metadata.model !== name) err(`warning: ${weightFile} was written for '${metadata.model}', loading it into '${name}'`);
    const images = decodeNpy(readFileOrExplain(values.input!, 'input file'), values.input);
    if (images.shape.length !== 4) throw new DataFormatError(values.input!, 'expected a batch of images', { expected: `4 dimensions (${layout.toUpperCase()})`, found: `[${images.shape.join(', ')}]` });
    const channels = layout === 'nchw' ? images.shape[1] : images.shape[3];
    if (channels !== options.inChannels) {
      throw new ConfigError('--layout', `a layout whose channel axis has the model's ${options.inChannels} channels`, `${layout} with ${channels} channels in [${images.shape.join(', ')}]`, layout === 'nchw' ? 'is the file NHWC? pass --layout nhwc' : 'is the file NCHW? pass --layout nchw');
    }

    const model = modelEntry(name).create({ ...options, skipInit: true });
    try {
      // A checkpoint may keep the model under `model.`; a Kiln weight file has bare keys.
      const first = Object.keys(model.stateDict())[0];
      const prefix = !Object.hasOwn(tensors, first) && Object.hasOwn(tensors, `model.${first}`) ? 'model.' : undefined;
      loadWeightTensors(model, tensors, { file: weightFile, prefix });
      model.eval();
      const x = fromHost(images);
      const outputs: tf.Tensor[] = [];
      const n = images.shape[0];
      for (let i = 0; i < n; i += batchSize) {
        outputs.push(
          tf.tidy(() => {
            const batch = tf.slice(x, [i, 0, 0, 0], [Math.min(batchSize, n - i), -1, -1, -1]);
            return model.forward(layout === 'nchw' ? tf.transpose(batch, [0, 2, 3, 1]) : batch);
          }),
        );
      }
      const y = tf.concat(outputs, 0);
      const host: HostTensor = await toHostAsync(y);
      tf.dispose([x, y, ...outputs]);
      writeFileAtomic(values.output!, encodeNpy(host));
      const result = { model: name, weights: weightFile, input: values.input, layout, output: values.output, shape: host.shape, backend: choice.name };
      err(`wrote ${values.output}: [${host.shape.join(', ')}]`);
      out(JSON.stringify(result));
    } finally {
      model.dispose();
    }
    return 0;
  },
};
