import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError, DataFormatError, KilnError, NotFoundError } from '@kiln/core';
import { ArrayDataset } from './dataset.js';
import { decodeImage, type DecodedImage } from './image-decode.js';

/** @internal A request to a decoding worker. */
export interface DecodeRequest {
  id: number;
  file: string;
  channels: 1 | 3;
}

/** @internal A worker's answer: the image, or the parts of the error it raised. */
export interface DecodeReply {
  id: number;
  image?: DecodedImage;
  error?: { problem: string; offset?: number; expected?: string; found?: string };
}

/** Options of {@link imageFolder}. */
export interface ImageFolderOptions {
  /** Channels of the decoded images: 1 (grey) or 3 (RGB, default). */
  channels?: 1 | 3;
  /** Decoding threads (default: CPU cores − 1, at most 4); 0 decodes on the calling thread. */
  workers?: number;
  /** Skip images that cannot be decoded (or differ in size from the first) instead of failing (default false). */
  skipBad?: boolean;
  /** Receives one line per skipped image (default: console.warn). */
  onWarning?: (message: string) => void;
  /** File extensions taken as images, lower case (default .png, .jpg, .jpeg). */
  extensions?: string[];
}

/** The image files of `root/<class>/…`, classes in sorted order. */
export function listImageFolder(
  root: string,
  extensions = ['.png', '.jpg', '.jpeg'],
): {
  /** Class names: the sub-directory names, sorted. */
  classes: string[];
  /** Every image file with its label. */
  files: {
    /** Path of the image. */
    file: string;
    /** Index of its class in `classes`. */
    label: number;
  }[];
} {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new NotFoundError(`image folder '${root}'`, [root], 'pass a directory with one sub-directory of images per class');
  const classes = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  if (classes.length === 0) throw new NotFoundError(`class sub-directories in '${root}'`, [root], 'lay images out as ROOT/<class name>/<image>.png');
  const files: { file: string; label: number }[] = [];
  classes.forEach((c, label) => {
    const dir = path.join(root, c);
    for (const name of readdirSync(dir).sort()) {
      if (extensions.includes(path.extname(name).toLowerCase())) files.push({ file: path.join(dir, name), label });
    }
  });
  if (files.length === 0) throw new NotFoundError(`images (${extensions.join(', ')}) under '${root}'`, classes.map((c) => path.join(root, c)));
  return { classes, files };
}

/**
 * The worker script, built beside this bundle; when running from the sources it is the built copy
 * in dist/. `__dirname` exists in both bundles (the ESM one defines it in its banner) and under vitest.
 */
function workerScript(): string {
  const here = __dirname;
  const candidates = [path.join(here, 'decode-worker.cjs'), path.join(here, '..', 'dist', 'decode-worker.cjs')];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new NotFoundError('the image decoding worker (decode-worker.cjs)', candidates, 'build @kiln/data (npx nx run @kiln/data:build), or pass workers: 0');
  return found;
}

/** Decodes `files` on a pool of worker threads; results come back in the order of `files`. */
async function decodeInWorkers(files: string[], channels: 1 | 3, workers: number): Promise<(DecodedImage | DataFormatError)[]> {
  const script = workerScript();
  const results: (DecodedImage | DataFormatError)[] = new Array(files.length);
  let next = 0;
  const pool = Array.from({ length: Math.min(workers, files.length) }, () => new Worker(script));
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            let busy = false;
            const send = () => {
              busy = next < files.length;
              if (!busy) return resolve();
              const id = next++;
              worker.postMessage({ id, file: files[id], channels } satisfies DecodeRequest);
            };
            // A worker that dies mid-file (killed, out of memory) would otherwise leave us waiting forever.
            worker.on('exit', (code) => {
              if (busy) reject(new KilnError('E_WORKER', 'an image decoding worker exited while decoding', { found: `exit code ${code}` }));
            });
            worker.on('message', (reply: DecodeReply) => {
              const e = reply.error;
              results[reply.id] = e ? new DataFormatError(files[reply.id], e.problem, { offset: e.offset, expected: e.expected, found: e.found }) : (reply.image as DecodedImage);
              send();
            });
            worker.on('error', (err) => reject(new KilnError('E_WORKER', 'an image decoding worker failed', { found: err.message, cause: err })));
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}

/**
 * Loads an image-classification folder — ROOT/<class>/<image>, classes numbered in sorted order —
 * into an `ArrayDataset` of [H, W, channels] images in [0, 1]. PNG and JPEG files are decoded in
 * worker threads. All images must have the size of the first; a file that cannot be read or
 * differs in size raises a DataFormatError naming it, or, with `skipBad`, is left out with a warning.
 */
export async function imageFolder(root: string, options: ImageFolderOptions = {}): Promise<ArrayDataset> {
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ConfigError('imageFolder.channels', '1 or 3', channels);
  const workers = options.workers ?? Math.min(4, Math.max(1, os.availableParallelism() - 1));
  if (!(Number.isInteger(workers) && workers >= 0)) throw new ConfigError('imageFolder.workers', 'an integer >= 0', options.workers);
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const { classes, files } = listImageFolder(root, options.extensions);
  const paths = files.map((f) => f.file);
  const decoded =
    workers === 0
      ? paths.map((file) => {
          try {
            return decodeImage(readFileSync(file), file, channels);
          } catch (e) {
            if (e instanceof DataFormatError) return e;
            throw e;
          }
        })
      : await decodeInWorkers(paths, channels, workers);
  const kept: { image: DecodedImage; label: number }[] = [];
  let first: { file: string; height: number; width: number } | null = null;
  for (let i = 0; i < decoded.length; i++) {
    const d = decoded[i];
    let problem: DataFormatError | null = d instanceof DataFormatError ? d : null;
    if (!(d instanceof DataFormatError) && first && (d.height !== first.height || d.width !== first.width)) {
      problem = new DataFormatError(paths[i], 'image size differs from the first image in the folder', { expected: `${first.height}×${first.width} (as ${first.file})`, found: `${d.height}×${d.width}`, hint: 'resize the images to one size first' });
    }
    if (problem) {
      if (!options.skipBad) throw problem;
      warn(`warning: skipping ${paths[i]}: ${problem.message.split('\n')[0]}`);
      continue;
    }
    const img = d as DecodedImage;
    first ??= { file: paths[i], height: img.height, width: img.width };
    kept.push({ image: img, label: files[i].label });
  }
  if (!first) throw new DataFormatError(root, 'no readable images in the folder', { expected: 'at least one PNG or JPEG image' });
  const [h, w] = [first.height, first.width];
  const size = h * w * channels;
  const x = new Float32Array(kept.length * size);
  const y = new Int32Array(kept.length);
  kept.forEach((k, i) => {
    x.set(k.image.data, i * size);
    y[i] = k.label;
  });
  return new ArrayDataset(x, y, [h, w, channels], classes);
}
