import { readFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataFormatError, NotFoundError } from '@kiln/core';
import { ArrayDataset, type ScaledBytes } from './dataset.js';
import { ensureDownloaded, type RemoteFile } from './download.js';
import { DatasetUnavailableError, type LocateOptions, type Split } from './fashion-mnist.js';
import { readTar } from './tar.js';

/*
 * The CIFAR-10 / CIFAR-100 "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html): records
 * of label byte(s) followed by a 32×32 image stored channel-planar (1,024 red bytes, then green, then
 * blue, each row-major). CIFAR-10 has one label byte (0–9); CIFAR-100 two, coarse (0–19) then fine (0–99).
 */

/** The ten CIFAR-10 class names, by label. */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const PIXELS = 32 * 32;

/** Options of `parseCifar` and `readCifarFiles`. */
export interface CifarOptions {
  /** 10 or 100 (default 10). */
  variant?: 10 | 100;
  /** For CIFAR-100: which label to use (default 'fine'). */
  labels?: 'fine' | 'coarse';
}

/**
 * Parses the bytes of one CIFAR binary batch file into [32, 32, 3] images in [0, 1], held as bytes
 * (`{ bytes, scale: 255 }`, converted to float32 per batch); `file` names it in errors.
 */
export function parseCifar(bytes: Uint8Array, file: string, options: CifarOptions = {}): ArrayDataset {
  const variant = options.variant ?? 10;
  const labelBytes = variant === 10 ? 1 : 2;
  const record = labelBytes + 3 * PIXELS;
  if (bytes.length === 0) throw new DataFormatError(file, 'empty CIFAR file', { offset: 0, expected: `records of ${record} bytes` });
  if (bytes.length % record !== 0) {
    const whole = Math.floor(bytes.length / record);
    throw new DataFormatError(file, `file truncated: the last CIFAR-${variant} record is incomplete`, {
      offset: whole * record,
      expected: `a multiple of ${record} bytes (${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + 3072 pixels)`,
      found: `${bytes.length} bytes (${whole} whole records + ${bytes.length - whole * record})`,
      hint: variant === 10 && bytes.length % (2 + 3 * PIXELS) === 0 ? 'this looks like CIFAR-100: pass variant 100' : undefined,
    });
  }
  const n = bytes.length / record;
  const labelIndex = variant === 100 && options.labels !== 'coarse' ? 1 : 0;
  const x = new Uint8Array(n * 3 * PIXELS);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * record;
    for (let k = 0; k < labelBytes; k++) {
      const limit = variant === 10 ? 9 : k === 0 ? 19 : 99;
      if (bytes[base + k] > limit) {
        throw new DataFormatError(file, `label of record ${i} is out of range`, { offset: base + k, expected: `0..${limit}`, found: String(bytes[base + k]) });
      }
    }
    y[i] = bytes[base + labelIndex];
    const img = base + labelBytes;
    const out = i * 3 * PIXELS;
    // Planar RGB → interleaved HWC.
    for (let p = 0; p < PIXELS; p++) {
      x[out + 3 * p] = bytes[img + p];
      x[out + 3 * p + 1] = bytes[img + PIXELS + p];
      x[out + 3 * p + 2] = bytes[img + 2 * PIXELS + p];
    }
  }
  return new ArrayDataset({ bytes: x, scale: 255 }, y, [32, 32, 3], variant === 10 ? CIFAR10_CLASSES : undefined);
}

/** Reads and concatenates CIFAR binary batch files (e.g. data_batch_1.bin … data_batch_5.bin). */
export function readCifarFiles(files: string[], options: CifarOptions = {}): ArrayDataset {
  const parts = files.map((f) => {
    if (!existsSync(f)) throw new NotFoundError(`CIFAR file '${f}'`, [f]);
    return parseCifar(readFileSync(f), f, options);
  });
  const n = parts.reduce((a, p) => a + p.length, 0);
  const x = new Uint8Array(n * 3 * PIXELS);
  const y = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    x.set((p.stored as ScaledBytes).bytes, at * 3 * PIXELS);
    y.set(p.y, at);
    at += p.length;
  }
  return new ArrayDataset({ bytes: x, scale: 255 }, y, [32, 32, 3], parts[0]?.classes);
}

/** Where each variant's files live once its archive is unpacked, and the archive itself. */
const LAYOUT = {
  10: {
    name: 'CIFAR-10',
    dir: 'cifar-10-batches-bin',
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
    names: { fine: 'batches.meta.txt', coarse: 'batches.meta.txt' },
    archive: { name: 'cifar-10-binary.tar.gz', urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'], sha256: 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd' },
  },
  100: {
    name: 'CIFAR-100',
    dir: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    names: { fine: 'fine_label_names.txt', coarse: 'coarse_label_names.txt' },
    archive: { name: 'cifar-100-binary.tar.gz', urls: ['https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz'], sha256: '58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec' },
  },
} as const satisfies Record<10 | 100, { name: string; dir: string; train: readonly string[]; test: readonly string[]; names: { fine: string; coarse: string }; archive: RemoteFile }>;

export interface CifarLocateOptions extends LocateOptions, CifarOptions {}

/** The binary files of one copy of CIFAR, when `dir` holds them all. */
function cifarFilesIn(dir: string, variant: 10 | 100): string | null {
  const l = LAYOUT[variant];
  return [...l.train, ...l.test].every((f) => existsSync(path.join(dir, f))) ? dir : null;
}

/**
 * Finds the unpacked binary version of CIFAR-10/100: `dataDir` (itself or its
 * `cifar-10-batches-bin/` / `cifar-100-binary/`), then `$KILN_DATA_DIR` the same way, then the
 * cache, then a SHA-256-verified download of the archive into the cache, unpacked there. Returns
 * the directory holding the `.bin` files. With `dataDir` given nothing is downloaded.
 */
export async function locateCifar(options: CifarLocateOptions = {}): Promise<string> {
  const variant = options.variant ?? 10;
  const l = LAYOUT[variant];
  const env = options.env ?? process.env;
  const candidates: string[] = [];
  const base = options.dataDir ?? env.KILN_DATA_DIR;
  if (base) candidates.push(base, path.join(base, l.dir));
  const cacheDir = options.cacheDir ?? path.join(env.KILN_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'kiln'), `cifar${variant}`);
  if (!options.dataDir) candidates.push(path.join(cacheDir, l.dir));
  for (const dir of candidates) {
    const found = cifarFilesIn(dir, variant);
    if (found) return found;
  }
  const files = [...l.train, ...l.test].join(', ');
  const hint = [
    `download ${l.archive.urls[0]} (the "binary version"), unpack it with 'tar xzf ${l.archive.name} -C DIR'`,
    `and pass --dataset cifar${variant}:DIR (or --data-dir DIR, or set KILN_DATA_DIR=DIR); DIR/${l.dir}/ then holds ${files}`,
    options.dataDir ? `without --data-dir, Kiln downloads it into ${cacheDir} when online` : `or allow the download into ${cacheDir} (needs network access)`,
  ].join('\n    ');
  const what = `the ${l.name} binary files (${files})`;
  if (options.dataDir || options.download === false) throw new DatasetUnavailableError(l.name, candidates, hint, what);
  try {
    const archive = await ensureDownloaded(l.archive, cacheDir, options.fetchImpl);
    unpackCifarArchive(archive, cacheDir);
  } catch (e) {
    throw new DatasetUnavailableError(l.name, [...candidates, `download into ${cacheDir} (${e instanceof Error ? e.message.split('\n')[0] : e})`], hint, what);
  }
  const found = cifarFilesIn(path.join(cacheDir, l.dir), variant);
  if (!found) throw new DataFormatError(path.join(cacheDir, l.archive.name), `the archive did not contain ${l.dir}/ with ${files}`);
  return found;
}

/** Unpacks a CIFAR `.tar.gz` into `dest` (only its regular files, refusing paths that leave `dest`). */
export function unpackCifarArchive(archive: string, dest: string): void {
  let tar: Uint8Array;
  try {
    tar = gunzipSync(readFileSync(archive));
  } catch (e) {
    throw new DataFormatError(archive, 'corrupt gzip stream', { offset: 0, found: e instanceof Error ? e.message : String(e) });
  }
  const root = path.resolve(dest);
  for (const entry of readTar(tar, archive)) {
    const target = path.resolve(root, entry.name);
    if (!target.startsWith(root + path.sep)) throw new DataFormatError(archive, `archive member '${entry.name}' would be written outside ${dest}`);
    mkdirSync(path.dirname(target), { recursive: true });
    // Each file appears whole or not at all, so an interrupted unpack is redone, not half-read.
    writeFileSync(`${target}.part`, entry.data);
    renameSync(`${target}.part`, target);
  }
}

/**
 * Class names of a CIFAR copy, from its `batches.meta.txt` (CIFAR-10) or
 * `fine_label_names.txt` / `coarse_label_names.txt` (CIFAR-100): one name per line. Without the
 * file, CIFAR-10 falls back to its published names and CIFAR-100 to the label numbers.
 */
export function readCifarClassNames(dir: string, options: CifarOptions = {}): string[] {
  const variant = options.variant ?? 10;
  const labels = options.labels ?? 'fine';
  const count = variant === 10 ? 10 : labels === 'coarse' ? 20 : 100;
  const file = path.join(dir, LAYOUT[variant].names[labels]);
  if (!existsSync(file)) return variant === 10 ? [...CIFAR10_CLASSES] : Array.from({ length: count }, (_, i) => String(i));
  const names = readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length !== count) throw new DataFormatError(file, `expected ${count} class names, one per line`, { found: `${names.length} names` });
  return names;
}

/** One split of CIFAR-10 or CIFAR-100 (fine or coarse labels) with its class names, found as `locateCifar` does. */
export async function cifar(split: Split, options: CifarLocateOptions = {}): Promise<ArrayDataset> {
  const dir = await locateCifar(options);
  const variant = options.variant ?? 10;
  const ds = readCifarFiles(LAYOUT[variant][split].map((f) => path.join(dir, f)), options);
  return new ArrayDataset(ds.stored, ds.y, ds.shape, readCifarClassNames(dir, options));
}
