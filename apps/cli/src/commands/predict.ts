import { parseArgs } from 'node:util';
import { ConfigError, DataFormatError, KilnError, Rng, decodeNpy, decodeSafetensors, encodeNpy, fromHost, tf, toHostAsync, type HostTensor } from '@kiln/core';
import { loadImages, normalize } from '@kiln/data';
import { loadWeightTensors, modelEntry, type ZooOptions } from '@kiln/zoo';
import { loadCheckpoint } from '@kiln/trainer';
import { choiceArg, intArg } from '../args.js';
import { startRun } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';
import { listImageFiles } from '../datasets.js';
import { MAX_CLASSES, modelFor, readCliInfo, topClasses } from '../checkpoint-info.js';
import { readFileOrExplain, writeFileAtomic } from './import-weights.js';
import { MODEL_FLAGS, MODEL_FLAGS_USAGE, modelOptionsFromFlags } from './summary.js';

export const PREDICT_USAGE = `usage: kiln predict --weights RUN/checkpoints/best.ckpt --input IMAGE|DIR [--top-k K]
       kiln predict --model NAME --weights W.ckpt --input X.npy --output Y.npy [options]

With image files (one, or every image below a directory), runs a checkpoint written by 'kiln train'
or 'kiln fine-tune' on them, prepared as it was trained (size, channels, normalisation, all recorded
in the checkpoint), and prints one JSON line per image:
  {"file": "...", "top": [{"class": "Sneaker", "probability": 0.93}, ...]}
With a .npy file, runs a zoo model in eval mode on the array and writes its outputs (logits) as .npy.

options:
  --weights FILE        checkpoint (images), or Kiln weight file (from 'kiln import-weights', .npy mode)
  --input PATH          an image, a directory of images, or float32 images in a .npy file,
                        [N, C, H, W] or [N, H, W, C] (see --layout)
  --top-k K             classes listed per image, most probable first (default 5)
  --batch-size B        images per forward pass (default 32)
.npy mode:
${MODEL_FLAGS_USAGE}
  --layout L            nchw (PyTorch's order, default) or nhwc (Kiln's and TensorFlow's)
  --output FILE         where to write the [N, classes] float32 outputs
`;

/** Options a weight file records about the model it was written from (numClasses, smallInput, …). */
function recordedOptions(metadata: Record<string, string>, file: string): ZooOptions {
  if (!metadata.options) return {};
  let o: unknown;
  try {
    o = JSON.parse(metadata.options);
  } catch {
    throw new DataFormatError(file, 'the metadata entry "options" is not JSON', { found: metadata.options.slice(0, 80) });
  }
  // Sizes come from the file: bounded before any model is built from them.
  const opts = (o && typeof o === 'object' ? o : {}) as Record<string, unknown>;
  const bounded = (key: string, hi: number) => {
    const v = opts[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= hi)) {
      throw new DataFormatError(file, `the metadata entry "options.${key}" is out of range`, { expected: `an integer in 1…${hi}`, found: JSON.stringify(v)?.slice(0, 40) });
    }
  };
  bounded('numClasses', MAX_CLASSES);
  bounded('inChannels', 4);
  return opts as ZooOptions;
}

export const predictCommand: Command = {
  name: 'predict',
  summary: 'classify image files with a checkpoint (top-k class names as JSON lines), or run a model on a .npy array',
  usage: PREDICT_USAGE,
  async run(argv, out, err) {
    const { values } = parseArgs({
      args: argv,
      options: { ...MODEL_FLAGS, weights: { type: 'string' }, input: { type: 'string' }, output: { type: 'string' }, layout: { type: 'string' }, 'batch-size': { type: 'string' }, 'top-k': { type: 'string' } },
      strict: true,
    });
    for (const flag of ['weights', 'input'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required`, PREDICT_USAGE);
    if (!values.input!.toLowerCase().endsWith('.npy')) return predictImages(values as ImageFlags, out, err);
    if (!values.output) throw new UsageError('--output is required with a .npy input', PREDICT_USAGE);
    const layout = choiceArg('layout', values.layout, 'nchw', ['nchw', 'nhwc'] as const);
    const batchSize = intArg('batch-size', values['batch-size'], 32);
    const { backend: choice } = await startRun(values.backend, err);

    const weightFile = values.weights!;
    const { metadata, tensors } = decodeSafetensors(readFileOrExplain(weightFile, 'weight file'), weightFile);
    const { name, options } = modelOptionsFromFlags(values, recordedOptions(metadata, weightFile));
    if (metadata.model && metadata.model !== name) err(`warning: ${weightFile} was written for '${metadata.model}', loading it into '${name}'`);
    const images = decodeNpy(readFileOrExplain(values.input!, 'input file'), values.input);
    if (images.dtype !== 'float32' && images.dtype !== 'float64') {
      throw new DataFormatError(values.input!, 'expected floating-point images', { expected: 'float32 (or float64) values', found: images.dtype, hint: images.dtype === 'uint8' ? 'save the pixels as float32 scaled the way the model was trained (e.g. x.astype(np.float32) / 255)' : undefined });
    }
    if (images.shape.length === 4 && images.shape[0] === 0) throw new DataFormatError(values.input!, 'the array holds no images', { expected: 'at least one image', found: `[${images.shape.join(', ')}]` });
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

interface ImageFlags {
  weights: string;
  input: string;
  'top-k'?: string;
  'batch-size'?: string;
  backend?: string;
  output?: string;
  model?: string;
}

/** `kiln predict --weights CKPT --input IMAGE|DIR`: one JSON line of top-k classes per image. */
async function predictImages(values: ImageFlags, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (values.output) throw new UsageError('--output goes with a .npy input; with images, the predictions are printed', PREDICT_USAGE);
  const k = intArg('top-k', values['top-k'], 5);
  const batchSize = intArg('batch-size', values['batch-size'], 32);
  await startRun(values.backend, err);
  const { info } = readCliInfo(values.weights);
  if (values.model && values.model !== info.model) throw new ConfigError('--model', `the checkpoint's model (${info.model}) or nothing`, values.model);
  const pre = info.preprocessing;
  const files = listImageFiles(values.input);
  err(`predict: ${files.length} image${files.length > 1 ? 's' : ''}, ${info.model} on ${pre.size.join('×')}×${pre.channels} (${pre.resize}), ${info.classes.length} classes`);
  const model = modelFor(info, { skipInit: true });
  let failed = 0;
  try {
    loadCheckpoint(values.weights, model);
    model.eval();
    const standardise = normalize({ mean: pre.mean, std: pre.std });
    const shape: [number, number, number] = [pre.size[0], pre.size[1], pre.channels];
    for (let at = 0; at < files.length; at += batchSize) {
      const { kept, images } = await readImages(files.slice(at, at + batchSize), { size: pre.size, resize: pre.resize, channels: pre.channels as 1 | 3 }, err);
      failed += Math.min(batchSize, files.length - at) - kept.length;
      if (kept.length === 0) continue;
      const x = new Float32Array(kept.length * shape[0] * shape[1] * shape[2]);
      images.forEach((img, i) => x.set(img, i * img.length));
      const logits = tf.tidy(() => {
        const batch = tf.tensor4d(x, [kept.length, ...shape]);
        return model.forward(standardise(batch, new Rng(0)));
      });
      const tops = await topClasses(logits, info.classes, k);
      logits.dispose();
      kept.forEach((file, i) => out(JSON.stringify({ file, top: tops[i] })));
    }
  } finally {
    model.dispose();
  }
  if (failed > 0) err(`warning: ${failed} of ${files.length} images could not be read`);
  return failed === files.length ? 1 : 0;
}

/** Decodes a batch of files; when one fails, the others are decoded alone and the bad ones reported and left out. */
async function readImages(files: string[], options: Parameters<typeof loadImages>[1], err: (line: string) => void): Promise<{ kept: string[]; images: Float32Array[] }> {
  try {
    return { kept: files, images: await loadImages(files, options) };
  } catch (e) {
    if (!(e instanceof KilnError) || files.length === 1) {
      if (e instanceof KilnError) {
        err(`warning: skipping ${files[0]}: ${e.message.split('\n')[0]}`);
        return { kept: [], images: [] };
      }
      throw e;
    }
    const kept: string[] = [];
    const images: Float32Array[] = [];
    for (const f of files) {
      const one = await readImages([f], options, err);
      kept.push(...one.kept);
      images.push(...one.images);
    }
    return { kept, images };
  }
}
