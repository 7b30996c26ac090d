/**
 * One playground run, composed from Kiln's own parts and nothing of the page's: a Trainer from
 * `createTrainer({ accelerator, plugins })` (the backend plugins, EarlyStopping, ModelCheckpoint
 * writing to the given storage — IndexedDB in the page — and the loggers), a zoo model in a
 * `ClassificationModule` (Adam with a cosine schedule), `DataLoader`s with @kiln/data's batched
 * augmentations. No DOM here: the Node test builds the same run, so a checkpoint written by either
 * resumes in the other.
 */
import { tf, type BackendProvider } from '@kiln/core';
import { ArrayDataset, DataLoader, compose, horizontalFlip, randomCrop, type Augmentation } from '@kiln/data';
import { Adam, LrScheduler, cosineAnnealingLr } from '@kiln/optim';
import { ClassificationModule, EarlyStopping, ModelCheckpoint, callback, createTrainer, logger, type Callback, type Logger, type Storage, type Trainer } from '@kiln/trainer';
import type { ZooEntry } from '@kiln/zoo';
import type { Split, Subset } from './subset.js';

/** One training run's settings, as picked on the page. */
export interface RunOptions {
  /** Zoo model name (`lenet5`, …). */
  model: string;
  batchSize: number;
  /** Adam's initial learning rate; a cosine schedule takes it to 0 over `epochs`. */
  lr: number;
  epochs: number;
  /** How many of the subset's training examples to use. */
  trainExamples: number;
  /** How many of the subset's test examples validate each epoch. */
  testExamples: number;
  /** Training-batch augmentations. */
  augment: { flip: boolean; shift: boolean };
  /** Seeds weights, shuffling and augmentation. */
  seed: number;
  /**
   * Pause after this many epochs (0: run all `epochs`): the epoch's checkpoint is written, and
   * Resume continues the same run (same schedule, same data order) from it.
   */
  pauseAfter?: number;
}

/** What the page (or a test) plugs into a run. */
export interface RunHost {
  /** Where ModelCheckpoint writes and `resume` reads: IndexedDB in the page, files in Node. */
  storage: Storage;
  /** The backends the run may use (`webgpuBackend()`, `wasmBackend()`, …). */
  backends: BackendProvider[];
  /** Which of them: `'auto'` or a backend's name (default `'auto'`). */
  accelerator?: string;
  /** Loggers (the page's live chart). */
  loggers?: Logger[];
  /** More callbacks. */
  callbacks?: Callback[];
}

/** A composed run, ready for `trainer.fit(module, train, val, ckptPath)`. */
export interface PlaygroundRun {
  trainer: Trainer;
  module: ClassificationModule;
  train: DataLoader;
  val: DataLoader;
  /** Where its checkpoints go (`<dir>/last.ckpt`, `<dir>/best.ckpt`). */
  checkpointDir: string;
}

/** Input size used in the browser: the model's own, capped so deep models stay trainable in a tab. */
export function playgroundInputShape(e: ZooEntry): [number, number, number] {
  const size = Math.max(e.minInputSize, Math.min(e.inputShape[0], 32));
  return [size, size, e.inputShape[2]];
}

/** Where a model's checkpoints live in the storage. */
export function checkpointDir(model: string): string {
  return `playground/${model}`;
}

/** The first `count` examples of a split, standardised with the training pixels' mean and std. */
export function splitDataset(split: Split, count: number, subset: Subset): ArrayDataset {
  const n = Math.min(count, split.count);
  const px = subset.height * subset.width;
  const x = new Float32Array(n * px);
  for (let i = 0; i < n * px; i++) x[i] = (split.images[i] / 255 - subset.mean) / subset.std;
  return new ArrayDataset(x, Int32Array.from(split.labels.subarray(0, n)), [subset.height, subset.width, 1], subset.classes);
}

/**
 * Brings 28×28×1 images to the size and channels the model expects (ImageNet-shaped models get
 * them resized and repeated over 3 channels); none when they fit already, as for LeNet-5 (a
 * loader transform must return a new tensor: the loader disposes the one it passed in).
 */
function toModelInput([h, w, c]: [number, number, number], subset: Subset): Augmentation | undefined {
  if (h === subset.height && w === subset.width && c === 1) return undefined;
  return (x) =>
    tf.tidy(() => {
      let out = x;
      if (out.shape[1] !== h || out.shape[2] !== w) out = tf.image.resizeBilinear(out, [h, w]);
      if (c !== 1) out = tf.tile(out, [1, 1, 1, c]);
      return out;
    });
}

/**
 * Composes a run of `entry`, the zoo model named `options.model`: the trainer first, whose backend
 * is chosen and started before the model is built on it (nothing trains yet; `trainer.accelerator`
 * says which backend and why).
 */
export async function playgroundRun(subset: Subset, options: RunOptions, entry: ZooEntry, host: RunHost): Promise<PlaygroundRun> {
  const dir = checkpointDir(options.model);
  const shape = playgroundInputShape(entry);
  const trainer = createTrainer({
    accelerator: host.accelerator ?? 'auto',
    maxEpochs: options.epochs,
    seed: options.seed,
    numSanityValSteps: 0,
    logEveryNSteps: 1,
    storage: host.storage,
    plugins: [
      ...host.backends,
      callback(new EarlyStopping({ monitor: 'val_loss', patience: 3 })),
      callback(new ModelCheckpoint({ dirpath: dir, monitor: 'val_loss', saveLast: true })),
      callback(recordPreprocessing(options, subset, shape)),
      ...(options.pauseAfter ? [callback(pauseAfter(options.pauseAfter))] : []),
      ...(host.callbacks ?? []).map(callback),
      ...(host.loggers ?? []).map(logger),
    ],
  });
  await trainer.selectAccelerator();
  const fit = toModelInput(shape, subset);
  const augment: Augmentation[] = [];
  if (options.augment.flip) augment.push(horizontalFlip());
  // ±2 pixels: pad by 2, cut a 28×28 window at a random offset.
  if (options.augment.shift) augment.push(randomCrop({ padding: 2 }));
  if (fit) augment.push(fit);
  const train = new DataLoader(splitDataset(subset.train, options.trainExamples, subset), {
    batchSize: options.batchSize,
    shuffle: true,
    dropLast: true,
    seed: options.seed + 1,
    transform: augment.length > 0 ? compose(...augment) : undefined,
  });
  const val = new DataLoader(splitDataset(subset.test, options.testExamples, subset), { batchSize: 250, transform: fit });
  const stepsPerEpoch = Math.floor(Math.min(options.trainExamples, subset.train.count) / options.batchSize);
  const model = entry.create({ numClasses: subset.classes.length, inChannels: shape[2] });
  const module = new ClassificationModule(model, {
    configureOptimizers: (m) => {
      const optimizer = new Adam(m.trainableVariables(), { lr: options.lr });
      return { optimizer, scheduler: new LrScheduler(optimizer, cosineAnnealingLr({ tMax: Math.max(1, options.epochs * stepsPerEpoch) })), interval: 'step' };
    },
    hparams: { model: options.model, batchSize: options.batchSize, lr: options.lr, epochs: options.epochs, augment: options.augment },
  });
  return { trainer, module, train, val, checkpointDir: dir };
}

/** Stops `fit` at the end of epoch `n` (after its checkpoint: ModelCheckpoint is registered first). */
function pauseAfter(n: number): Callback {
  return {
    onTrainEpochEnd: (trainer) => {
      if (trainer.currentEpoch + 1 >= n) trainer.shouldStop = true;
    },
  };
}

/**
 * Records in every checkpoint what the model was trained on and how its input was prepared, under
 * the `cli` key `kiln evaluate` and `kiln predict` read: a checkpoint downloaded from the page is
 * evaluated in Node on the real Fashion-MNIST test split with the same normalisation.
 */
function recordPreprocessing(options: RunOptions, subset: Subset, shape: [number, number, number]): Callback {
  const stats = { mean: [subset.mean], std: [subset.std] };
  const info = {
    model: options.model,
    dataset: 'fashion-mnist',
    numClasses: subset.classes.length,
    classes: subset.classes,
    inputShape: shape,
    preprocessing: { dataset: 'fashion-mnist', size: [shape[0], shape[1]], channels: shape[2], resize: 'stretch', ...stats },
    normalization: stats,
  };
  return {
    onSaveCheckpoint: (_t, _m, checkpoint) => {
      checkpoint.cli = info;
    },
  };
}

/** SHA-256 (hex) of the model's weights, in state-dict order: equal digests are bit-identical weights. */
export async function weightsDigest(run: Pick<PlaygroundRun, 'module'>): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const [name, t] of Object.entries(run.module.model.stateDict())) {
    const data = await t.data();
    parts.push(new TextEncoder().encode(name), new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength));
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Class predicted for each validation example and the confusion counts (rows: true class). */
export async function predictValidation(run: PlaygroundRun, subset: Subset, count: number): Promise<{ predictions: Int32Array; confusion: number[][]; acc: number }> {
  const outputs = await run.trainer.predict(run.module, run.val);
  const predictions = new Int32Array(Math.min(count, subset.test.count));
  let at = 0;
  for (const logits of outputs) {
    const idx = tf.argMax(logits, -1);
    predictions.set((await idx.data()) as Int32Array, at);
    at += idx.shape[0];
    tf.dispose([idx, logits]);
  }
  const k = subset.classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  predictions.forEach((p, i) => {
    const y = subset.test.labels[i];
    confusion[y][p]++;
    if (p === y) correct++;
  });
  return { predictions, confusion, acc: correct / predictions.length };
}
