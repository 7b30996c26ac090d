import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataFormatError, KilnError } from '@kiln/core';
import { ArrayDataset } from './dataset.js';
import { readIdxFile, readIdxFileAsync } from './files.js';
import type { IdxArray } from './idx.js';
import { ensureDownloaded, type RemoteFile } from './download.js';

/** Fashion-MNIST's two splits: 60,000 training and 10,000 test images. */
export type Split = 'train' | 'test';

/** The ten class names, by label. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const BASE = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';
const FILES: Record<string, RemoteFile> = {
  'train-images': { name: 'train-images-idx3-ubyte.gz', urls: [BASE + 'train-images-idx3-ubyte.gz'], sha256: 'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7' },
  'train-labels': { name: 'train-labels-idx1-ubyte.gz', urls: [BASE + 'train-labels-idx1-ubyte.gz'], sha256: '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056' },
  'test-images': { name: 't10k-images-idx3-ubyte.gz', urls: [BASE + 't10k-images-idx3-ubyte.gz'], sha256: 'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa' },
  'test-labels': { name: 't10k-labels-idx1-ubyte.gz', urls: [BASE + 't10k-labels-idx1-ubyte.gz'], sha256: '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05' },
};

/** Debian's `dataset-fashion-mnist` package installs the files here. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Where {@link locateFashionMnist} and {@link fashionMnist} look, and whether they may download. */
export interface LocateOptions {
  /** Explicit directory (CLI `--data-dir`); wins over everything. */
  dataDir?: string;
  /** Environment to read `KILN_DATA_DIR` and `KILN_CACHE_DIR` from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Allow a download into the cache when no local copy exists (default true). */
  download?: boolean;
  /** Where downloads go (default `$KILN_CACHE_DIR` or `~/.cache/kiln/fashion-mnist`). */
  cacheDir?: string;
  /** The `fetch` used for downloads (tests pass a fake). Default: the global one. */
  fetchImpl?: typeof fetch;
}

/** The dataset is in none of the places looked and could not be downloaded; lists where it looked. */
export class DatasetUnavailableError extends KilnError {
  /** `files` says what was looked for (default: the IDX files, as Fashion-MNIST has them). */
  constructor(dataset: string, tried: string[], hint: string, files = 'the IDX files') {
    super('E_DATASET_UNAVAILABLE', `${dataset} could not be found or downloaded`, { expected: `${files} in one of:\n    ${tried.join('\n    ')}`, hint });
  }
}

/** The four IDX files of one copy of Fashion-MNIST; a name matches with or without `.gz`. */
function filesIn(dir: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const [key, f] of Object.entries(FILES)) {
    const raw = path.join(dir, f.name.replace(/\.gz$/, ''));
    const gz = path.join(dir, f.name);
    if (existsSync(gz)) out[key] = gz;
    else if (existsSync(raw)) out[key] = raw;
    else return null;
  }
  return out;
}

/**
 * Finds Fashion-MNIST: `dataDir`, then `$KILN_DATA_DIR` (itself or its `fashion-mnist/`), then
 * Debian's package directory, then a SHA-256-verified download into the cache.
 */
export async function locateFashionMnist(options: LocateOptions = {}): Promise<Record<string, string>> {
  const env = options.env ?? process.env;
  const tried: string[] = [];
  const candidates: string[] = [];
  if (options.dataDir) candidates.push(options.dataDir, path.join(options.dataDir, 'fashion-mnist'));
  else {
    if (env.KILN_DATA_DIR) candidates.push(env.KILN_DATA_DIR, path.join(env.KILN_DATA_DIR, 'fashion-mnist'));
    candidates.push(DEBIAN_FASHION_MNIST_DIR);
  }
  for (const dir of candidates) {
    tried.push(dir);
    const found = filesIn(dir);
    if (found) return found;
  }
  const cacheDir = options.cacheDir ?? (env.KILN_CACHE_DIR ? path.join(env.KILN_CACHE_DIR, 'fashion-mnist') : path.join(os.homedir(), '.cache', 'kiln', 'fashion-mnist'));
  const cached = filesIn(cacheDir);
  if (cached) return cached;
  const hint = [
    'install the Debian package: apt-get install dataset-fashion-mnist',
    'or pass --data-dir DIR (or set KILN_DATA_DIR) pointing at the four IDX files (train-images-idx3-ubyte[.gz], …)',
    `or allow a download into ${cacheDir} (needs network access)`,
  ].join('\n    ');
  if (options.dataDir || options.download === false) throw new DatasetUnavailableError('Fashion-MNIST', tried, hint);
  tried.push(`download into ${cacheDir}`);
  try {
    const out: Record<string, string> = {};
    for (const [key, f] of Object.entries(FILES)) out[key] = await ensureDownloaded(f, cacheDir, options.fetchImpl);
    return out;
  } catch (e) {
    throw new DatasetUnavailableError('Fashion-MNIST', tried.map((t, i) => (i === tried.length - 1 ? `${t} (${e instanceof Error ? e.message.split('\n')[0] : e})` : t)), hint);
  }
}

/**
 * Reads an MNIST-format image/label file pair into an `ArrayDataset` of [28, 28, 1] images scaled
 * to [0, 1]. The pixels stay bytes (`{ bytes, scale: 255 }`): batches are converted to float32 as
 * they are gathered, with the same values a float32 copy of the whole file would hold.
 */
export function readIdxImageDataset(imagesFile: string, labelsFile: string, classes?: string[]): ArrayDataset {
  return idxImageDataset(readIdxFile(imagesFile), readIdxFile(labelsFile), imagesFile, labelsFile, classes);
}

/** An image/label pair of parsed IDX arrays as a dataset, checked as {@link readIdxImageDataset} describes. */
function idxImageDataset(images: IdxArray, labels: IdxArray, imagesFile: string, labelsFile: string, classes?: string[]): ArrayDataset {
  if (images.shape.length !== 3 || images.dtype !== 'uint8') {
    throw new DataFormatError(imagesFile, 'expected a uint8 image array of 3 dimensions', { offset: 2, expected: 'uint8 [N, H, W]', found: `${images.dtype} [${images.shape}]` });
  }
  if (labels.shape.length !== 1) {
    throw new DataFormatError(labelsFile, 'expected a 1-D label array', { offset: 3, expected: '[N]', found: `[${labels.shape}]` });
  }
  if (labels.shape[0] !== images.shape[0]) {
    throw new DataFormatError(labelsFile, 'label count does not match image count', { offset: 4, expected: `${images.shape[0]} labels (from ${imagesFile})`, found: `${labels.shape[0]}` });
  }
  const [, h, w] = images.shape;
  const y = Int32Array.from(labels.data as Uint8Array);
  if (classes) {
    for (let i = 0; i < y.length; i++) {
      if (y[i] < 0 || y[i] >= classes.length) {
        throw new DataFormatError(labelsFile, `label ${y[i]} is outside the ${classes.length} classes`, { offset: 8 + i, expected: `0..${classes.length - 1}`, found: String(y[i]) });
      }
    }
  }
  return new ArrayDataset({ bytes: images.data as Uint8Array, scale: 255 }, y, [h, w, 1], classes);
}

/**
 * Loads one split of Fashion-MNIST, finding the files as `locateFashionMnist` does. The files are
 * decompressed off the calling thread, so loading both splits at once reads them in parallel.
 */
export async function fashionMnist(split: Split, options: LocateOptions = {}): Promise<ArrayDataset> {
  const files = await locateFashionMnist(options);
  const imagesFile = files[`${split}-images`];
  const labelsFile = files[`${split}-labels`];
  const [images, labels] = await Promise.all([readIdxFileAsync(imagesFile), readIdxFileAsync(labelsFile)]);
  return idxImageDataset(images, labels, imagesFile, labelsFile, FASHION_MNIST_CLASSES);
}
