#!/usr/bin/env node
// Build step for the playground: writes the files the page fetches at run time into public/.
//
// - public/data/fashion-mnist-subset.{bin,json}: the first TRAIN training and TEST test examples of
//   the real Fashion-MNIST IDX files (found the way `kiln train` finds them: $KILN_DATA_DIR, then
//   Debian's /usr/share/datasets/fashion-mnist), read with @kiln/data's IDX reader. Layout of the
//   .bin: train images (uint8, N×28×28), train labels (uint8, N), test images, test labels.
// - public/wasm/*.wasm: tfjs's WebAssembly binaries, which bundlers do not copy on their own.
//
// Usage: node scripts/prepare-assets.mjs [--train N] [--test N]
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FASHION_MNIST_CLASSES, locateFashionMnist, readIdxFile } from '@kiln/data';

const here = path.dirname(fileURLToPath(import.meta.url));
const pub = path.join(here, '..', 'public');
const { values } = parseArgs({ options: { train: { type: 'string', default: '4000' }, test: { type: 'string', default: '1000' } } });
const counts = { train: Number(values.train), test: Number(values.test) };
for (const [k, n] of Object.entries(counts)) if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer, got '${values[k]}'`);

const files = await locateFashionMnist({ download: false });
const parts = [];
const meta = { source: {}, height: 28, width: 28, classes: FASHION_MNIST_CLASSES, counts: {}, layout: ['train-images', 'train-labels', 'test-images', 'test-labels'] };
for (const split of ['train', 'test']) {
  const images = readIdxFile(files[`${split}-images`]);
  const labels = readIdxFile(files[`${split}-labels`]);
  const [n, h, w] = images.shape;
  if (h !== 28 || w !== 28 || labels.shape[0] !== n) throw new Error(`${files[`${split}-images`]}: unexpected shape [${images.shape}] / labels [${labels.shape}]`);
  const m = Math.min(counts[split], n);
  parts.push(images.data.subarray(0, m * h * w), labels.data.subarray(0, m));
  meta.counts[split] = m;
  meta.source[split] = [files[`${split}-images`], files[`${split}-labels`]];
}
const bytes = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
let offset = 0;
for (const p of parts) {
  bytes.set(p, offset);
  offset += p.length;
}
mkdirSync(path.join(pub, 'data'), { recursive: true });
writeFileSync(path.join(pub, 'data', 'fashion-mnist-subset.bin'), bytes);
writeFileSync(path.join(pub, 'data', 'fashion-mnist-subset.json'), JSON.stringify(meta, null, 2) + '\n');

const require = createRequire(import.meta.url);
const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
mkdirSync(path.join(pub, 'wasm'), { recursive: true });
const wasm = readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'));
for (const f of wasm) copyFileSync(path.join(wasmDir, f), path.join(pub, 'wasm', f));
console.log(`playground assets: ${meta.counts.train} train + ${meta.counts.test} test examples, ${wasm.length} .wasm files`);
