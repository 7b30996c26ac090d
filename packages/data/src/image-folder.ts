/**
 * Image folders in Node: the file-system layout and `sharp` decoding wired to the platform-free
 * lazy dataset in images/image-folder-dataset.ts. Browsers get the same dataset from index.browser.ts.
 */
import { ConfigError } from '@kiln/core';
import { checkSize, pixelsToFloat, type ResizeMode } from './images/geometry.js';
import { DEFAULT_EXTENSIONS, type FolderLayout, type ImageLimits } from './images/image-host.js';
import { openImageFolder, type ImageFolder, type ImageFolderOptions } from './images/image-folder-dataset.js';
import { folderLayout } from './images/layout.js';
import { fsLister, joinPath, SharpHost } from './images/sharp-host.js';
import { defaultDecodeThreads, WorkerPoolHost } from './images/worker-pool-host.js';

/**
 * The image files of an image-classification folder (`ROOT/<class>/…`, or `ROOT/train|val|test/<class>/…`),
 * as full paths, classes in sorted order. Reads directories only, no image.
 */
export async function listImageFolder(root: string, extensions: string[] = DEFAULT_EXTENSIONS): Promise<FolderLayout> {
  const layout = await folderLayout(fsLister(root), root, extensions);
  for (const entries of Object.values(layout.splits)) for (const e of entries) e.file = joinPath(root, e.file);
  return layout;
}

/**
 * Opens an image-classification folder as lazy datasets, one per split: class names from the
 * sub-folders (sorted), every image brought to one `size` and `channels` when it is read, whatever
 * its own size, format (PNG of any colour type, JPEG incl. progressive, CMYK and EXIF-rotated, WebP,
 * GIF, TIFF, AVIF) or colour space. Headers are read at opening, so most unreadable files are found
 * then: a DataFormatError naming the file, or with `skipBad` a warning each and the list in `skipped`.
 * Call `close()` on the result when done.
 */
export async function imageFolder(root: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  const workers = options.workers ?? defaultDecodeThreads();
  if (!(Number.isInteger(workers) && workers >= 0)) throw new ConfigError('imageFolder.workers', 'an integer >= 0', options.workers);
  const layout = await listImageFolder(root, options.extensions);
  const host = workers === 0 ? new SharpHost(options) : new WorkerPoolHost(workers, options, { steal: options.stealLate, lateMs: options.decodeLateMs });
  // In flight at once: with threads, a couple of batches per thread (a worker reads and decodes
  // four files at a time, so what it holds stays small); on the calling thread, libuv's four
  // threads and a few files read ahead.
  return openImageFolder(root, layout, host, options, workers === 0 ? 8 : 128 * workers);
}

/** Options of {@link loadImages}. */
export interface LoadImagesOptions extends ImageLimits {
  /** `[height, width]` every image is brought to: the model's input size. */
  size: [number, number];
  /** How an image of another aspect ratio is brought to `size` (default 'stretch'); see `ResizeMode`. */
  resize?: ResizeMode;
  /** 1 (BT.601 luma) or 3 (RGB, default). */
  channels?: 1 | 3;
}

/**
 * Reads image files as a model's input: each brought to `size` and `channels` exactly as
 * `imageFolder` does (use the preprocessing the model was trained with), values in [0, 1], HWC.
 * An unreadable file raises a DataFormatError naming it.
 */
export async function loadImages(files: string[], options: LoadImagesOptions): Promise<Float32Array[]> {
  const size = checkSize(options.size, 'loadImages.size');
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ConfigError('loadImages.channels', '1 or 3', channels);
  const host = new SharpHost(options);
  const resize = options.resize ?? 'stretch';
  return Promise.all(files.map(async (f) => pixelsToFloat(await host.decode(f, { size, resize, channels }), size[0] * size[1], channels)));
}
