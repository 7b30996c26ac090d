/**
 * Image folders in browsers: the files of a directory picker (`<input type="file" webkitdirectory>`,
 * whose Files carry `webkitRelativePath`) or any named Blobs, laid out and read exactly as in Node
 * (same layout rules, resize plans, caching and bad-file policy), decoded by the browser.
 */
import { ConfigError } from '@kiln/core';
import { CanvasHost } from './canvas-host.js';
import { checkSize, pixelsToFloat, type ResizeMode } from './geometry.js';
import { DEFAULT_EXTENSIONS, type DecodedImage, type ImageLimits } from './image-host.js';
import { openImageFolder, type ImageFolder, type ImageFolderOptions } from './image-folder-dataset.js';
import { folderLayout, type DirEntry } from './layout.js';

/** A file of a folder: a picked `File` (its `webkitRelativePath` starts with the picked folder's name) or a Blob and its path below the root. */
export type FolderFile = File | { path: string; blob: Blob };

/** The files as a tree of '/'-joined paths below the root, and the root's name. */
function tree(files: Iterable<FolderFile>): { root: string; blobs: Map<string, Blob>; dirs: Map<string, Map<string, boolean>> } {
  const blobs = new Map<string, Blob>();
  const dirs = new Map<string, Map<string, boolean>>([['', new Map()]]);
  let root = '';
  for (const f of files) {
    let parts: string[];
    let blob: Blob;
    if ('path' in f && 'blob' in f) {
      parts = f.path.split('/').filter((p) => p !== '' && p !== '.');
      blob = f.blob;
    } else {
      const file = f as File;
      // A directory picker names files "<picked folder>/<class>/<image>": the first part is the root.
      [root, ...parts] = (file.webkitRelativePath || file.name).split('/');
      if (parts.length === 0) parts = [root];
      blob = file;
    }
    if (parts.some((p) => p === '..')) throw new ConfigError('imageFolderFromFiles(files)', 'paths inside the folder', parts.join('/'));
    const rel = parts.join('/');
    blobs.set(rel, blob);
    let dir = '';
    parts.forEach((name, i) => {
      const isDir = i < parts.length - 1;
      (dirs.get(dir) as Map<string, boolean>).set(name, isDir);
      dir = dir === '' ? name : `${dir}/${name}`;
      if (isDir && !dirs.has(dir)) dirs.set(dir, new Map());
    });
  }
  return { root: root || 'folder', blobs, dirs };
}

/**
 * `imageFolder` for browsers: the same `ImageFolder` (classes from sub-folders, train/val/test
 * splits, lazy decoding, `size`/`resize`/`channels`, `skipBad`), decoded by the browser's own
 * decoders. Opening decodes every image once to check it (a browser cannot read a header alone);
 * pass `probe: false` to skip that for large folders. `workers` is how many images are decoded at once (default 4).
 */
export async function imageFolderFromFiles(files: Iterable<FolderFile>, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  const workers = options.workers ?? 4;
  if (!(Number.isInteger(workers) && workers >= 1)) throw new ConfigError('imageFolderFromFiles.workers', 'an integer >= 1 (images decoded at once)', options.workers);
  const { root, blobs, dirs } = tree(files);
  const list = async (dir: string): Promise<DirEntry[]> => [...(dirs.get(dir) ?? new Map<string, boolean>())].map(([name, isDir]) => ({ name, dir: isDir }));
  const layout = await folderLayout(list, root, options.extensions ?? DEFAULT_EXTENSIONS);
  return openImageFolder(root, layout, new CanvasHost(blobs, options), options, workers);
}

export interface DecodeBlobOptions extends ImageLimits {
  size?: [number, number];
  resize?: ResizeMode;
  channels?: 1 | 3;
  /** Names the blob in errors (default 'image'). */
  name?: string;
}

/** `decodeImage` for browsers: one image Blob with the same conversions as the folder. */
export async function decodeImageBlob(blob: Blob, options: DecodeBlobOptions = {}): Promise<DecodedImage> {
  const name = options.name ?? 'image';
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ConfigError('decodeImageBlob.channels', '1 or 3', channels);
  const host = new CanvasHost(new Map([[name, blob]]), options);
  const own = options.size === undefined ? await host.probe(name) : undefined;
  const size = own ? ([own.height, own.width] as [number, number]) : checkSize(options.size, 'decodeImageBlob.size');
  const data = pixelsToFloat(await host.decode(name, { size, resize: options.resize ?? 'stretch', channels }), size[0] * size[1], channels);
  return { height: size[0], width: size[1], channels, data };
}
