import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { tf, ConfigError, DataFormatError, NotFoundError, Rng } from '@kiln/core';
import {
  ArrayDataset, channelStats, cifar, compose, fashionMnist, holdOut, imageFolder, isAsyncDataset, loadImages, normalize, parseCsv, subsetDataset,
  DEFAULT_EXTENSIONS, type Augmentation, type ChannelStats, type Dataset, type Example, type ImageFolderDataset,
} from '@kiln/data';

/**
 * `--dataset SPEC` and the flags that shape its images, turned into train/validation/test datasets,
 * class names and the preprocessing a model trained on them needs. Every command that reads a
 * dataset (train, evaluate, fine-tune, data preview) goes through here, and `kiln predict` replays
 * the recorded preprocessing on new images.
 */

export const DATASET_KINDS = ['fashion-mnist', 'cifar10', 'cifar100', 'folder', 'csv'] as const;
export type DatasetKind = (typeof DATASET_KINDS)[number];
export const RESIZE_MODES = ['stretch', 'shorter-side', 'pad'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

/** parseArgs option specs of the data flags. */
export const DATA_OPTIONS = {
  dataset: { type: 'string' },
  'data-dir': { type: 'string' },
  'image-size': { type: 'string' },
  channels: { type: 'string' },
  resize: { type: 'string' },
  target: { type: 'string' },
} as const;

export const DATA_USAGE = `  --dataset SPEC        fashion-mnist[:DIR], cifar10[:DIR], cifar100[:DIR], folder:DIR or csv:FILE
                          folder:DIR   DIR/<class>/<image>, or DIR/train/, DIR/val/, DIR/test/ of those
                          csv:FILE     a label column and either pixel columns (row-major, channels last;
                                       0-255 values are scaled to [0, 1]) or one column of image paths;
                                       a FILE named *train* pairs with the same name with test as its test split
  --image-size HxW      resize images to H×W (folders: as they are decoded; arrays: bilinear, per batch)
  --channels N          1 (grey) or 3 (RGB); default: the dataset's (folders: 3)
  --resize MODE         how folder images reach --image-size: stretch (default), shorter-side (then
                        centre crop) or pad
  --target COLUMN       csv: the label column (default "label", else the last); cifar100: fine (default) or coarse
  --data-dir D          directory with the dataset files (same as SPEC:D)`;

export interface DataFlags {
  dataset?: string;
  'data-dir'?: string;
  'image-size'?: string;
  channels?: string;
  resize?: string;
  target?: string;
}

export interface DatasetSpec {
  kind: DatasetKind;
  /** Directory or file the spec names (or --data-dir); undefined where the dataset is found by itself. */
  location?: string;
}

/** Parses `--dataset` (plus `--data-dir`, which older command lines used for the location). */
export function parseDatasetSpec(text: string, dataDir?: string): DatasetSpec {
  const colon = text.indexOf(':');
  const kind = (colon < 0 ? text : text.slice(0, colon)) as DatasetKind;
  const location = colon < 0 ? dataDir : text.slice(colon + 1);
  if (!DATASET_KINDS.includes(kind)) throw new ConfigError('--dataset', `one of: ${DATASET_KINDS.join(', ')} (e.g. folder:photos, csv:train.csv, cifar10:~/data)`, text);
  if (location === '') throw new ConfigError('--dataset', `a path after '${kind}:'`, text);
  if ((kind === 'folder' || kind === 'csv') && !location) throw new ConfigError('--dataset', `${kind}:${kind === 'csv' ? 'FILE' : 'DIR'}`, text, `e.g. --dataset ${kind === 'csv' ? 'csv:data/train.csv' : 'folder:photos'}`);
  return { kind, location };
}

/** The spec as text, e.g. `folder:photos` (recorded in checkpoints and summaries). */
export function formatDatasetSpec(spec: DatasetSpec): string {
  return spec.location ? `${spec.kind}:${spec.location}` : spec.kind;
}

/** `--image-size 28x28` (or `28`) as [height, width]. */
export function parseImageSize(text: string): [number, number] {
  const parts = text.toLowerCase().split('x').map((s) => Number(s.trim()));
  if ((parts.length !== 1 && parts.length !== 2) || parts.some((n) => !Number.isInteger(n) || n < 1)) throw new ConfigError('--image-size', 'HxW in pixels, e.g. 28x28 or 224x224', text);
  return [parts[0], parts[1] ?? parts[0]];
}

function parseChannels(text: string | undefined): 1 | 3 | undefined {
  if (text === undefined) return undefined;
  if (text !== '1' && text !== '3') throw new ConfigError('--channels', '1 (grey) or 3 (RGB)', text);
  return Number(text) as 1 | 3;
}

/**
 * What a model trained by `kiln train` expects of its input, recorded in its checkpoints: images of
 * `size` with `channels` channels, brought there with `resize`, values in [0, 1] then standardised
 * per channel with `mean` and `std`.
 */
export interface Preprocessing {
  /** The `--dataset` spec the statistics come from. */
  dataset: string;
  size: [number, number];
  channels: number;
  resize: ResizeMode;
  mean: number[];
  std: number[];
}

/** A dataset as loaded: its splits at the shape they are held in, and what turns them into model input. */
export interface LoadedData {
  spec: DatasetSpec;
  classes: string[];
  /** Shape [H, W, C] of the examples as the datasets hold them. */
  shape: [number, number, number];
  /** Shape [H, W, C] the model sees: `shape` after `convert`. */
  inputShape: [number, number, number];
  resize: ResizeMode;
  train: Dataset<Example>;
  val?: Dataset<Example>;
  test?: Dataset<Example>;
  /** Resizing and channel conversion of a batch held at `shape` (none when `shape` is the input shape). */
  convert?: Augmentation;
  /** Lines for the user: skipped files, scaled values, where the test split came from. */
  notes: string[];
  /** Stops decoding workers; call when done with the datasets. */
  close(): Promise<void>;
}

export interface LoadOptions {
  /** Which splits to read (default both; `evaluate` reads only the test split). */
  splits?: ('train' | 'test')[];
  /** Folders larger than this (as float32) are decoded batch by batch instead of once into memory (default 1 GiB; 0: always lazy). */
  memoryBudget?: number;
  onWarning?: (line: string) => void;
}

/**
 * The data flags with the input preparation a model expects (a checkpoint's, or published weights')
 * filled in where the command line leaves them out: size, channels and, for folders and CSV image
 * lists, the resize mode.
 */
export function flagsExpecting(flags: DataFlags, expected: { dataset?: string; size: [number, number]; channels: number; resize: ResizeMode }): DataFlags {
  const dataset = flags.dataset ?? expected.dataset;
  const { kind } = parseDatasetSpec(dataset ?? 'fashion-mnist', flags['data-dir']);
  return {
    ...flags,
    dataset,
    'image-size': flags['image-size'] ?? expected.size.join('x'),
    channels: flags.channels ?? String(expected.channels),
    resize: flags.resize ?? (kind === 'folder' || kind === 'csv' ? expected.resize : undefined),
  };
}

/** Reads the datasets the data flags describe. */
export async function loadData(flags: DataFlags, options: LoadOptions = {}): Promise<LoadedData> {
  const spec = parseDatasetSpec(flags.dataset ?? 'fashion-mnist', flags['data-dir']);
  const size = flags['image-size'] ? parseImageSize(flags['image-size']) : undefined;
  const channels = parseChannels(flags.channels);
  const resize = flags.resize === undefined ? 'stretch' : (RESIZE_MODES.find((m) => m === flags.resize) ?? badChoice('--resize', RESIZE_MODES, flags.resize));
  if (flags.resize !== undefined && spec.kind !== 'folder' && spec.kind !== 'csv') throw new ConfigError('--resize', 'only with --dataset folder:DIR or csv:FILE of image paths (arrays are resized by stretching)', flags.resize);
  if (flags.target !== undefined && spec.kind !== 'csv' && spec.kind !== 'cifar100') throw new ConfigError('--target', 'only with --dataset csv:FILE (a column) or cifar100 (fine or coarse)', flags.target);
  const splits = options.splits ?? ['train', 'test'];
  const warn = options.onWarning ?? (() => undefined);
  const base = { spec, resize, notes: [] as string[], close: async () => undefined };

  if (spec.kind === 'fashion-mnist' || spec.kind === 'cifar10' || spec.kind === 'cifar100') {
    const labels = spec.kind === 'cifar100' ? (flags.target === undefined ? 'fine' : flags.target === 'fine' || flags.target === 'coarse' ? flags.target : badChoice('--target', ['fine', 'coarse'], flags.target)) : undefined;
    const read = (split: 'train' | 'test') =>
      spec.kind === 'fashion-mnist' ? fashionMnist(split, { dataDir: spec.location }) : cifar(split, { dataDir: spec.location, variant: spec.kind === 'cifar10' ? 10 : 100, labels });
    const [train, test] = await Promise.all([splits.includes('train') ? read('train') : undefined, splits.includes('test') ? read('test') : undefined]);
    const held = (train ?? test) as ArrayDataset;
    return { ...base, ...arrayInput(held, size, channels), classes: held.classes ?? [], train: train ?? emptyLike(held), test };
  }
  if (spec.kind === 'folder') return { ...base, ...(await loadFolder(spec.location as string, size, channels, resize, splits, options.memoryBudget ?? 2 ** 30, warn)) };
  return { ...base, ...(await loadCsv(spec.location as string, flags.target, size, channels, resize, splits)) };
}

function badChoice(flag: string, choices: readonly string[], v: string): never {
  throw new ConfigError(flag, `one of: ${choices.join(', ')}`, v);
}

function emptyLike(ds: ArrayDataset): ArrayDataset {
  return new ArrayDataset(new Float32Array(0), new Int32Array(0), ds.shape, ds.classes);
}

/** Shapes and the per-batch conversion for a dataset held in memory at its own size. */
function arrayInput(ds: ArrayDataset, size: [number, number] | undefined, channels: 1 | 3 | undefined): Pick<LoadedData, 'shape' | 'inputShape' | 'convert'> {
  const shape = ds.shape as [number, number, number];
  const inputShape: [number, number, number] = [size?.[0] ?? shape[0], size?.[1] ?? shape[1], channels ?? shape[2]];
  const same = inputShape.every((v, i) => v === shape[i]);
  return { shape, inputShape, convert: same ? undefined : convertImages(inputShape) };
}

/**
 * Resizes a batch to [H, W] (bilinear, half-pixel centres, as PyTorch's `interpolate` and PIL
 * sample) and converts grey to RGB (repeated) or RGB to grey (BT.601 luma, as image decoding does).
 */
export function convertImages([h, w, c]: [number, number, number]): Augmentation {
  return (x) =>
    tf.tidy(() => {
      let y: tf.Tensor4D = x.shape[1] === h && x.shape[2] === w ? x : tf.image.resizeBilinear(x, [h, w], false, true);
      if (y.shape[3] !== c) {
        if (c === 3 && y.shape[3] === 1) y = tf.tile(y, [1, 1, 1, 3]);
        else if (c === 1 && y.shape[3] === 3) y = tf.sum(tf.mul(y, tf.tensor1d([0.299, 0.587, 0.114])), 3, true) as tf.Tensor4D;
        else throw new ConfigError('--channels', `1 or 3 (from images with ${y.shape[3]})`, c);
      }
      return y === x ? (x.clone() as tf.Tensor4D) : y;
    });
}

/** An image folder: DIR/<class>/… (all training data), or DIR/train, DIR/val, DIR/test of those. */
async function loadFolder(
  root: string,
  size: [number, number] | undefined,
  channels: 1 | 3 | undefined,
  resize: ResizeMode,
  splits: ('train' | 'test')[],
  budget: number,
  warn: (line: string) => void,
): Promise<Omit<LoadedData, 'spec' | 'resize'>> {
  const folder = await imageFolder(root, { size, resize, channels: channels ?? 3, skipBad: true, onWarning: warn });
  const notes: string[] = [];
  const shape = folder.train.shape;
  if (!size) notes.push(`no --image-size: every image is brought to ${shape[0]}×${shape[1]}, the size of the first training image`);
  const count = (splits.includes('train') ? folder.train.length + (folder.val?.length ?? 0) : 0) + (splits.includes('test') ? (folder.test?.length ?? 0) : 0);
  const bytes = count * shape[0] * shape[1] * shape[2] * 4;
  // Small folders are decoded once into memory, so later epochs cost no decoding; larger ones are
  // decoded batch by batch (prefetched while the step runs) with a bounded cache.
  const inMemory = bytes <= budget;
  const take = async (ds: ImageFolderDataset | undefined, split: 'train' | 'test') => (ds && splits.includes(split) ? (inMemory ? await ds.materialize() : ds) : undefined);
  try {
    const [train, val, test] = await Promise.all([take(folder.train, 'train'), take(folder.val, 'train'), take(folder.test, 'test')]);
    if (inMemory) folder.close();
    else if (budget > 0) notes.push(`${count} images (${(bytes / 2 ** 30).toFixed(1)} GiB as float32) are decoded batch by batch`);
    return {
      classes: folder.classes,
      shape,
      inputShape: shape,
      train: train ?? new ArrayDataset(new Float32Array(0), new Int32Array(0), shape, folder.classes),
      val,
      test,
      notes,
      close: async () => folder.close(),
    };
  } catch (e) {
    folder.close();
    throw e;
  }
}

/** `train.csv` → `test.csv`, `fashion-mnist_train.csv` → `fashion-mnist_test.csv`, when that file exists. */
function pairedTestFile(file: string): string | undefined {
  const name = path.basename(file);
  if (!/train/i.test(name)) return undefined;
  const candidate = path.join(path.dirname(file), name.replace(/train/i, (m) => (m === 'TRAIN' ? 'TEST' : m[0] === 'T' ? 'Test' : 'test')));
  return existsSync(candidate) ? candidate : undefined;
}

/** A CSV of labels with pixel columns or image paths. */
async function loadCsv(
  file: string,
  target: string | undefined,
  size: [number, number] | undefined,
  channels: 1 | 3 | undefined,
  resize: ResizeMode,
  splits: ('train' | 'test')[],
): Promise<Omit<LoadedData, 'spec' | 'resize'>> {
  if (!existsSync(file)) throw new NotFoundError(`CSV file '${file}'`, [file]);
  const testFile = pairedTestFile(file);
  const tables = { train: readTable(file, target), test: testFile ? readTable(testFile, target) : undefined };
  // One numbering of the classes for both files: integer labels as they are, names sorted.
  const raw = [...tables.train.labels, ...(tables.test?.labels ?? [])];
  const integers = raw.every((v) => /^\d+$/.test(v));
  const classes = integers ? Array.from({ length: Math.max(...raw.map(Number)) + 1 }, (_, i) => String(i)) : [...new Set(raw)].sort();
  const index = new Map(classes.map((c, i) => [c, i]));
  const notes: string[] = [testFile ? `test split: ${testFile}` : `no test split (no ${path.basename(file).replace(/train/i, 'test')} beside ${file})`];
  const build = async (t: CsvTable): Promise<ArrayDataset> => {
    const y = Int32Array.from(t.labels, (l) => index.get(l) as number);
    if (t.paths) {
      if (!size) throw new ConfigError('--image-size', 'a size for the images a CSV lists (they may differ in size)', undefined, 'e.g. --image-size 64x64');
      const files = t.paths.map((p) => path.resolve(path.dirname(t.file), p));
      const images = await loadImages(files, { size, resize, channels: channels ?? 3 });
      const shape: [number, number, number] = [size[0], size[1], channels ?? 3];
      const x = new Float32Array(images.length * shape[0] * shape[1] * shape[2]);
      images.forEach((img, i) => x.set(img, i * img.length));
      return new ArrayDataset(x, y, shape, classes);
    }
    const shape = pixelShape(t.width, size, channels, t.file);
    return new ArrayDataset(t.values as Float32Array, y, shape, classes);
  };
  const train = splits.includes('train') || !tables.test ? await build(tables.train) : undefined;
  const test = tables.test && splits.includes('test') ? await build(tables.test) : undefined;
  const held = (train ?? test) as ArrayDataset;
  if (tables.train.scaled) notes.push('pixel values 0-255 scaled to [0, 1]');
  // Pixel CSVs are read at their own size; --image-size then resizes per batch like any array.
  const input = tables.train.paths ? { shape: held.shape as [number, number, number], inputShape: held.shape as [number, number, number], convert: undefined } : arrayInput(held, size, channels);
  return { ...input, classes, train: train ?? emptyLike(held), test, notes, close: async () => undefined };
}

interface CsvTable {
  file: string;
  labels: string[];
  /** Image paths (one non-numeric feature column), or else pixel values in `values`. */
  paths?: string[];
  values?: Float32Array;
  width: number;
  scaled: boolean;
}

function readTable(file: string, target: string | undefined): CsvTable {
  const table = parseCsv(readFileSync(file), file);
  const t = target ?? (table.header.includes('label') ? 'label' : table.header[table.header.length - 1]);
  const labelAt = table.header.indexOf(t);
  if (labelAt < 0) throw new ConfigError('--target', `a column of ${file}: ${table.header.join(', ')}`, t);
  if (table.header.length < 2) throw new DataFormatError(file, 'a CSV dataset needs a label column and at least one more', { found: `${table.header.length} column` });
  const labels = table.rows.map((r) => r[labelAt].trim());
  const features = table.header.map((_, i) => i).filter((i) => i !== labelAt);
  if (features.length === 1 && table.rows.some((r) => r[features[0]].trim() !== '' && !Number.isFinite(Number(r[features[0]])))) {
    return { file, labels, paths: table.rows.map((r) => r[features[0]].trim()), width: 1, scaled: false };
  }
  const values = new Float32Array(table.rows.length * features.length);
  let max = 0;
  table.rows.forEach((r, i) => {
    features.forEach((c, k) => {
      const v = Number(r[c]);
      if (r[c].trim() === '' || !Number.isFinite(v)) throw new DataFormatError(file, `row ${i + 1}, column '${table.header[c]}' is not a number`, { offset: table.offsets[i], expected: 'a pixel value', found: JSON.stringify(r[c]) });
      values[i * features.length + k] = v;
      if (v > max) max = v;
    });
  });
  // 8-bit pixel values are scaled to [0, 1], as decoded images are, so `kiln predict` on image
  // files sees the same range the model was trained on.
  const scaled = max > 1;
  if (scaled) for (let i = 0; i < values.length; i++) values[i] /= 255;
  return { file, labels, values, width: features.length, scaled };
}

/** [H, W, C] of a CSV's pixel columns: from --image-size/--channels, or a square grey (or RGB) image. */
function pixelShape(width: number, size: [number, number] | undefined, channels: 1 | 3 | undefined, file: string): [number, number, number] {
  for (const c of channels ? [channels] : [1, 3]) {
    const side = Math.round(Math.sqrt(width / c));
    if (side * side * c === width) return [side, side, c];
  }
  throw new DataFormatError(file, `${width} pixel columns are not a square image`, {
    expected: `H×W×C values (e.g. 784 = 28×28×1)${size ? `; --image-size ${size.join('x')} resizes after reading, it does not say the stored size` : ''}`,
    found: `${width} columns besides the label`,
  });
}

/**
 * The training set and its validation set: the dataset's own (a folder's val/) when it has one, else
 * `split` examples held out at random under `seed` (a fraction below 1, a count from 1 up; 0: none).
 */
export function splitValidation(train: Dataset<Example>, val: Dataset<Example> | undefined, split: number, seed: number): [Dataset<Example>, Dataset<Example> | undefined] {
  if (val) return [train, val];
  const count = split >= 1 ? Math.floor(split) : Math.round(train.length * split);
  if (count < 1) return [train, undefined];
  if (count >= train.length) throw new ConfigError('--val-split', `a fraction in (0, 1) or a count below the ${train.length} training examples`, split);
  return holdOut(train, count, seed);
}

/** A random `n` of a dataset's examples under `seed` (all when n ≥ its length), in their original order. */
export function sampleDataset(ds: Dataset<Example>, n: number, seed: number): Dataset<Example> {
  return n >= ds.length ? ds : holdOut(ds, n, seed)[1];
}

/** Examples of a dataset as one in-memory batch (reads through `getMany` when the dataset has it). */
async function readExamples(ds: Dataset<Example>, indices: Int32Array): Promise<Example[]> {
  return isAsyncDataset(ds) ? ds.getMany(indices) : Array.from(indices, (i) => ds.get(i));
}

/** The examples at `indices` as one [N, ...shape] array of inputs and their labels. */
export async function readBatch(ds: Dataset<Example>, indices: Int32Array, shape: number[]): Promise<{ x: Float32Array; y: Int32Array }> {
  if (ds instanceof ArrayDataset) return ds.gather(indices);
  const size = shape.reduce((a, b) => a * b, 1);
  const examples = await readExamples(ds, indices);
  const x = new Float32Array(indices.length * size);
  examples.forEach((e, i) => x.set(e.x, i * size));
  return { x, y: Int32Array.from(examples, (e) => e.y) };
}

/**
 * Per-channel mean and standard deviation of the model's input (after `convert`), over the
 * training examples — all of them when they are in memory, else a seeded sample of `maxLazy`, since
 * reading a large folder once more only for statistics would cost an epoch of decoding.
 */
export async function inputStats(data: Pick<LoadedData, 'shape' | 'convert'>, train: Dataset<Example>, seed: number, maxLazy = 2000): Promise<ChannelStats> {
  // In memory and fed to the model as stored: the dataset's own statistics (from a histogram for
  // images held as bytes), the numbers the pass below would add up, without uploading a batch.
  if (train instanceof ArrayDataset && !data.convert && train.length > 0) return channelStats(train);
  const all = train instanceof ArrayDataset;
  const n = all ? train.length : Math.min(train.length, maxLazy);
  if (n === 0) throw new DataFormatError('training split', 'no examples to compute input statistics from');
  const order = all ? Int32Array.from({ length: n }, (_, i) => i) : new Rng(seed).permutation(train.length).subarray(0, n).slice().sort();
  let sum: Float64Array | null = null;
  let sq: Float64Array | null = null;
  let count = 0;
  const chunk = 512;
  for (let at = 0; at < n; at += chunk) {
    const indices = order.subarray(at, Math.min(n, at + chunk));
    const { x } = await readBatch(train, indices, data.shape);
    const batch = tf.tensor4d(x, [indices.length, ...data.shape]);
    const input = data.convert ? data.convert(batch, new Rng(0)) : batch;
    const values = await input.data();
    const c = input.shape[3];
    sum ??= new Float64Array(c);
    sq ??= new Float64Array(c);
    for (let i = 0; i < values.length; i++) {
      sum[i % c] += values[i];
      sq[i % c] += values[i] * values[i];
    }
    count += values.length / c;
    tf.dispose([batch, input]);
  }
  const mean = Array.from(sum as Float64Array, (s) => s / count);
  const std = Array.from(sq as Float64Array, (s, k) => Math.sqrt(Math.max(s / count - mean[k] * mean[k], 0)) || 1);
  return { mean, std };
}

/**
 * The per-batch pipeline from stored examples to model input: conversion to the input shape,
 * then (training only) augmentation on [0, 1] images, then standardisation — the order torchvision
 * recipes use (augment, `ToTensor`, `Normalize`).
 */
export function inputPipeline(convert: Augmentation | undefined, stats: ChannelStats, augment?: Augmentation): Augmentation {
  const steps: Augmentation[] = [];
  if (convert) steps.push(convert);
  if (augment) steps.push(augment);
  steps.push(normalize(stats));
  return steps.length === 1 ? steps[0] : compose(...steps);
}

/** The preprocessing record of a loaded dataset and its statistics. */
export function preprocessingOf(data: LoadedData, stats: ChannelStats): Preprocessing {
  return { dataset: formatDatasetSpec(data.spec), size: [data.inputShape[0], data.inputShape[1]], channels: data.inputShape[2], resize: data.resize, mean: stats.mean, std: stats.std };
}

/** Image files (by extension) directly in or below `dir`, sorted; a file is returned as itself. */
export function listImageFiles(input: string, extensions: readonly string[] = DEFAULT_EXTENSIONS): string[] {
  if (!existsSync(input)) throw new NotFoundError(`input '${input}'`, [input], 'pass an image file or a directory of images');
  const found: string[] = [];
  const walk = (p: string) => {
    const entries = readdirEntries(p);
    if (!entries) {
      found.push(p);
      return;
    }
    for (const e of entries.sort()) {
      const child = path.join(p, e);
      if (readdirEntries(child)) walk(child);
      else if (extensions.includes(path.extname(e).toLowerCase())) found.push(child);
    }
  };
  walk(input);
  if (found.length === 0) throw new NotFoundError(`images (${extensions.join(', ')}) under '${input}'`, [input]);
  return found;
}

function readdirEntries(p: string): string[] | null {
  try {
    return statSync(p).isDirectory() ? readdirSync(p) : null;
  } catch {
    return null;
  }
}

/** Class labels of a dataset's examples, without reading the examples where the dataset knows them. */
function labelsOf(ds: Dataset<Example>): Int32Array {
  if (ds instanceof ArrayDataset) return ds.y;
  const known = (ds as { labels?: Int32Array }).labels;
  return known ?? Int32Array.from({ length: ds.length }, (_, i) => ds.get(i).y);
}

/** A dataset whose labels are renumbered by `map` (label → new label), reading through `getMany` when the parent has it. */
class RelabeledDataset implements Dataset<Example> {
  constructor(
    private readonly source: Dataset<Example>,
    private readonly map: Map<number, number>,
  ) {}
  get length(): number {
    return this.source.length;
  }
  get(index: number): Example {
    const e = this.source.get(index);
    return { x: e.x, y: this.map.get(e.y) as number };
  }
  async getMany(indices: ArrayLike<number>): Promise<Example[]> {
    const examples = await readExamples(this.source, Int32Array.from(indices));
    return examples.map((e) => ({ x: e.x, y: this.map.get(e.y) as number }));
  }
}

/** The examples of `classes` (label indices), relabelled 0..k-1 by their position in `classes`. */
export function selectClasses(ds: Dataset<Example>, classes: number[], names?: string[]): Dataset<Example> {
  const position = new Map(classes.map((c, i) => [c, i]));
  const labels = labelsOf(ds);
  const indices: number[] = [];
  for (let i = 0; i < labels.length; i++) if (position.has(labels[i])) indices.push(i);
  if (ds instanceof ArrayDataset) {
    const sub = ds.subset(indices);
    const y = Int32Array.from(sub.y as Int32Array, (c) => position.get(c) as number);
    return new ArrayDataset(sub.stored, y, sub.shape, classes.map((c) => names?.[c] ?? ds.classes?.[c] ?? String(c)));
  }
  return new RelabeledDataset(subsetDataset(ds, indices), position);
}
