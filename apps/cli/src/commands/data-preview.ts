import { parseArgs } from 'node:util';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { tf, Rng } from '@kiln/core';
import { writeFileAtomic } from '@kiln/core/node';
import { AUGMENTATION_NAMES, parseAugmentations } from '@kiln/data';
import { intArg, subCommandArg } from '../args.js';
import { startRun } from '../backends.js';
import { UsageError } from '../errors.js';
import { DATA_OPTIONS, DATA_USAGE, loadData, readBatch, sampleDataset } from '../datasets.js';
import { labelledGridPng } from '../label-grid.js';
import type { Command } from '../command.js';

export const DATA_PREVIEW_USAGE = `usage: kiln data preview --dataset SPEC [--augment SPEC] --out grid.png [options]

Writes a PNG grid of training images, drawn at random (under --seed) and prepared as training would
prepare them (--image-size, --channels, then the augmentations), each with its class name under it:
to check a dataset and an augmentation recipe by eye.

options:
${DATA_USAGE}
  --augment SPEC        comma-separated augmentations, applied in order, e.g. "flip,rotate:15,crop:4":
                          ${AUGMENTATION_NAMES.join('\n                          ')}
  --out FILE            PNG file to write (required; a name without an extension gets .png,
                          a directory gets preview.png inside it)
  --count N             images in the grid (default 64)
  --columns N           images per row (default: square grid)
  --seed S              seed of the sample and the augmentations (default 0)
  --backend NAME        auto, wasm, cpu, … (default auto)
`;

export const dataPreviewCommand: Command = {
  name: 'data',
  summary: 'data tools: `kiln data preview` writes a PNG grid of (augmented) samples labelled with their classes',
  usage: DATA_PREVIEW_USAGE,
  async run(argv, out, err) {
    const [sub, ...rest] = argv;
    subCommandArg('data', sub, ['preview'] as const, DATA_PREVIEW_USAGE);
    const { values } = parseArgs({
      args: rest,
      options: { ...DATA_OPTIONS, augment: { type: 'string' }, out: { type: 'string' }, count: { type: 'string' }, columns: { type: 'string' }, seed: { type: 'string' }, backend: { type: 'string' } },
      strict: true,
    });
    if (!values.out) throw new UsageError('--out is required', `e.g. --out grid.png\n${DATA_PREVIEW_USAGE}`);
    const outFile = previewFile(values.out);
    const count = intArg('count', values.count, 64);
    const columns = values.columns === undefined ? undefined : intArg('columns', values.columns, 8);
    const seed = intArg('seed', values.seed, 0, 0);
    const augment = parseAugmentations(values.augment ?? '');

    await startRun(values.backend, err);
    // Lazy, so that only the images shown are decoded.
    const data = await loadData(values, { splits: ['train'], memoryBudget: 0, onWarning: err });
    try {
      for (const note of data.notes) err(`data: ${note}`);
      const sample = sampleDataset(data.train, count, seed);
      const { x, y } = await readBatch(sample, Int32Array.from({ length: sample.length }, (_, i) => i), data.shape);
      const batch = tf.tensor4d(x, [sample.length, ...data.shape]);
      const rng = new Rng(seed);
      const input = data.convert ? data.convert(batch, rng) : batch;
      const augmented = augment(input, rng);
      const png = labelledGridPng(await augmented.data() as Float32Array, augmented.shape, Array.from(y, (c) => data.classes[c] ?? String(c)), { columns });
      tf.dispose([batch, input, augmented]);
      mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
      writeFileAtomic(outFile, png);
      const dataset = values.dataset ?? 'fashion-mnist';
      err(`wrote ${sample.length} ${values.augment ? `augmented (${values.augment}) ` : ''}${dataset} images to ${outFile}`);
      out(JSON.stringify({ out: outFile, dataset, images: sample.length, classes: new Set(y).size, augment: values.augment ?? '', seed, bytes: png.length }));
    } finally {
      await data.close();
    }
    return 0;
  },
};

/**
 * Where the grid goes for `--out NAME`: the grid is a PNG, so a name without an extension gets
 * `.png`, an existing directory gets `preview.png` inside it, and another extension (`.jpg`) is
 * refused rather than written as a PNG under a misleading name.
 */
export function previewFile(out: string): string {
  if (existsSync(out) && statSync(out).isDirectory()) return path.join(out, 'preview.png');
  const ext = path.extname(out);
  if (ext === '') return `${out}.png`;
  if (ext.toLowerCase() !== '.png') throw new UsageError(`--out ${out}: the preview is a PNG image, so the file name must end in .png (got '${ext}')`, DATA_PREVIEW_USAGE);
  return out;
}
