import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { tf, Rng } from '@kiln/core';
import { existsSync, readdirSync } from 'node:fs';
import { AUGMENTATION_NAMES, fashionMnist, imageFolder, imageGridPng, parseAugmentations, readCifarFiles, type ArrayDataset } from '@kiln/data';
import { intArg } from '../args.js';
import { cliBackends } from '../backends.js';
import { UsageError } from '../errors.js';
import type { Command } from '../command.js';

export const DATA_PREVIEW_USAGE = `usage: kiln data preview --dataset fashion-mnist [--augment SPEC] --out grid.png [options]

Writes a PNG grid of training images after augmentation, to check an augmentation recipe by eye.

options:
  --dataset NAME        fashion-mnist, cifar10 (binary batches in --data-dir) or folder (ROOT/<class>/<image> in --data-dir)
  --augment SPEC        comma-separated augmentations, applied in order, e.g. "flip,rotate:15,crop:4":
                          ${AUGMENTATION_NAMES.join('\n                          ')}
  --out FILE            PNG file to write (required)
  --count N             images in the grid (default 64)
  --columns N           images per row (default: square grid)
  --seed S              seed of the augmentations (default 0)
  --data-dir D          directory with the dataset files
  --backend NAME        auto, wasm, cpu, … (default auto)
`;

/** Writes bytes atomically (temporary file, then rename). */
function writeAtomic(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

const DATASETS = ['fashion-mnist', 'cifar10', 'folder'];

/** The training images of `dataset`; `dataDir` holds the files (required except for Fashion-MNIST). */
async function loadDataset(dataset: string, dataDir: string | undefined, err: (line: string) => void, count: number): Promise<ArrayDataset> {
  if (dataset === 'fashion-mnist') return fashionMnist('train', { dataDir });
  const dir = dataDir as string;
  if (dataset === 'folder') {
    // Decoded lazily: only the images the grid shows are read.
    const folder = await imageFolder(dir, { skipBad: true, onWarning: err });
    try {
      return await folder.train.materialize(Array.from({ length: Math.min(count, folder.train.length) }, (_, i) => i));
    } finally {
      folder.close();
    }
  }
  const batches = existsSync(dir) ? readdirSync(dir).filter((f) => /^data_batch_\d+\.bin$/.test(f)).sort() : [];
  if (batches.length === 0) throw new UsageError(`no CIFAR-10 training batches (data_batch_N.bin) in '${dir}'`, 'point --data-dir at the cifar-10-batches-bin directory');
  return readCifarFiles(batches.map((f) => path.join(dir, f)));
}

export const dataPreviewCommand: Command = {
  name: 'data',
  summary: 'data tools: `kiln data preview` writes a PNG grid of augmented samples',
  usage: DATA_PREVIEW_USAGE,
  async run(argv, out, err) {
    const [sub, ...rest] = argv;
    if (sub !== 'preview') throw new UsageError(sub === undefined ? 'missing sub-command' : `unknown sub-command 'data ${sub}'`, DATA_PREVIEW_USAGE);
    const { values } = parseArgs({
      args: rest,
      options: {
        dataset: { type: 'string' },
        augment: { type: 'string' },
        out: { type: 'string' },
        count: { type: 'string' },
        columns: { type: 'string' },
        seed: { type: 'string' },
        'data-dir': { type: 'string' },
        backend: { type: 'string' },
      },
      strict: true,
    });
    if (!values.out) throw new UsageError('--out is required', `e.g. --out grid.png\n${DATA_PREVIEW_USAGE}`);
    const dataset = values.dataset ?? 'fashion-mnist';
    if (!DATASETS.includes(dataset)) throw new UsageError(`unknown dataset '${dataset}'`, `supported: ${DATASETS.join(', ')}`);
    if (dataset !== 'fashion-mnist' && !values['data-dir']) throw new UsageError(`--dataset ${dataset} needs --data-dir`, DATA_PREVIEW_USAGE);
    const count = intArg('count', values.count, 64);
    const columns = values.columns === undefined ? undefined : intArg('columns', values.columns, 8);
    const seed = intArg('seed', values.seed, 0, 0);
    const augment = parseAugmentations(values.augment ?? '');

    const choice = await cliBackends().use(values.backend ?? 'auto');
    err(`backend: ${choice.name} — ${choice.info.device}`);
    const train = (await loadDataset(dataset, values['data-dir'], err, count)).take(count);
    const x = tf.tensor4d(train.x, [train.length, ...(train.shape as [number, number, number])]);
    const augmented = augment(x, new Rng(seed));
    const png = await imageGridPng(augmented, { columns });
    x.dispose();
    augmented.dispose();
    mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
    writeAtomic(values.out, png);
    err(`wrote ${train.length} ${values.augment ? `augmented (${values.augment}) ` : ''}${dataset} images to ${values.out}`);
    out(JSON.stringify({ out: values.out, images: train.length, augment: values.augment ?? '', seed, bytes: png.length }));
    return 0;
  },
};
