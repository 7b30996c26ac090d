import { ConfigError, DataFormatError, KilnError } from '@kiln/core';
import type { TensorSpec } from '../collate.js';
import { ArrayDataset, type Example, type GatherOptions, type GatheringDataset } from '../dataset.js';
import { ByteLru, type CacheStats } from './byte-lru.js';
import { checkSize, pixelsToFloat, RESIZE_MODES, type ResizeMode } from './geometry.js';
import type { FolderLayout, ImageEntry, ImageHost, ImageLimits } from './image-host.js';

/** Options of `imageFolder` and `imageFolderFromFiles`. */
export interface ImageFolderOptions extends ImageLimits {
  /** Size every image is brought to, `[height, width]` (default: the size of the first readable training image). */
  size?: [number, number];
  /** How an image of another size (or aspect ratio) is brought to `size` (default 'stretch'); see `ResizeMode`. */
  resize?: ResizeMode;
  /** 1 (BT.601 luma) or 3 (RGB, default). Grey images are repeated to RGB; alpha is flattened on black. */
  channels?: 1 | 3;
  /**
   * Leave unreadable images out instead of failing (default false). Files whose header cannot be read
   * are found when the folder is opened; one that fails later, while decoding, is replaced by the
   * next readable image of its split (wrapping around), so batches keep their size and a run is the
   * same every time. Each skipped file gets one warning and an entry in `skipped`.
   */
  skipBad?: boolean;
  /** Receives the warnings (default: console.warn). */
  onWarning?: (message: string) => void;
  /**
   * Decoded images kept in a least-recently-used cache of at most this many bytes per split
   * (default 256 MiB; 0: none). Images are held as 8 bits per value, one byte per pixel for a grey
   * image and three for colour (converted to float32 as they are read), so 256 MiB holds some
   * 340,000 grey 28×28 images or 1,780 colour 224×224 ones; a folder that fits is decoded once,
   * in the first epoch.
   */
  cacheBytes?: number;
  /**
   * Decoding threads (Node: worker threads running sharp; default: CPU cores − 1, at least 1, at
   * most 4). 0 decodes from the calling thread (sharp still decodes on libuv's threads, but the
   * JavaScript around each image then shares the thread with training).
   */
  workers?: number;
  /** File name endings taken as images, lower case (default .png, .jpg, .jpeg, .webp). */
  extensions?: string[];
  /** Read every image's header when opening, to find unreadable files and the default size early (default true). */
  probe?: boolean;
  /**
   * When a `DataLoader` waits for a batch its decoding threads have not finished, the training
   * thread decodes the batch's remaining small plain JPEGs (already at `size`) itself rather than
   * sit idle; images that need libvips still wait for the threads (default true; Node, with
   * `workers` > 0). The batch is the same either way; `decodeStats()` counts who decoded what.
   */
  stealLate?: boolean;
  /** @internal Test hook: each decoding thread stalls this many ms per image of a batch (a thread starved of a core). */
  decodeLateMs?: number;
}

/** Images decoded for `gatherMany`, by thread (see `ImageFolderDataset.decodeStats`). */
export interface DecodeStats {
  /** Decoded by the folder's decoding threads. */
  threads: number;
  /** Decoded by the calling thread while it waited for a late batch (`stealLate`). */
  caller: number;
}

/** A file left out, and why. */
export interface SkippedImage {
  /** Path of the image, as in `ImageFolderDataset.files`. */
  file: string;
  /** First line of the error that made it unreadable. */
  reason: string;
}

/** An opened image folder: its classes and splits. */
export interface ImageFolder {
  /** The folder as named when opened: the path given in Node, the picked folder's name in a browser. */
  root: string;
  /** Class names, sorted; label `i` is `classes[i]` in every split. */
  classes: string[];
  /** The training images (every image when the folder has no split sub-folders). */
  train: ImageFolderDataset;
  /** The images under `val/` (or `valid/`, `validation/`), when the folder has one. */
  val?: ImageFolderDataset;
  /** The images under `test/`, when the folder has one. */
  test?: ImageFolderDataset;
  /** Files left out under `skipBad`, at opening and since (the list grows if a file fails while training). */
  skipped: SkippedImage[];
  /** Stops all splits (drops their caches). */
  close(): void;
}

/** Runs tasks of total weight at most `n` at once (a heavier task runs alone when nothing else does). */
class Limiter {
  private active = 0;
  private readonly waiting: { weight: number; go: () => void }[] = [];
  constructor(private readonly n: number) {}
  async run<T>(task: () => Promise<T>, weight = 1): Promise<T> {
    // A waiter's weight is counted by whoever releases it, so that nothing overtakes it meanwhile.
    if (this.active > 0 && (this.active + weight > this.n || this.waiting.length > 0)) await new Promise<void>((go) => this.waiting.push({ weight, go }));
    else this.active += weight;
    try {
      return await task();
    } finally {
      this.active -= weight;
      while (this.waiting.length > 0 && (this.active === 0 || this.active + this.waiting[0].weight <= this.n)) {
        const next = this.waiting.shift() as { weight: number; go: () => void };
        this.active += next.weight;
        next.go();
      }
    }
  }
}

/** Training images each decoding thread (and the calling thread, for late batches) decodes once at opening, unused: one batch of a typical size. */
const WARM_UP_IMAGES = 64;

/** Images per decoding request at most, so that a huge request neither holds all its pixels at once nor starves other callers. */
const CHUNK = 256;

const firstLine = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

/** Settings shared by the splits of one folder. */
interface Shared {
  host: ImageHost;
  /** Splits still open; the host is closed with the last. */
  open: number;
  size: [number, number];
  resize: ResizeMode;
  channels: 1 | 3;
  skipBad: boolean;
  warn: (m: string) => void;
  cacheBytes: number;
  limiter: Limiter;
  skipped: SkippedImage[];
  classes: string[];
}

/**
 * The images of one split, decoded on demand: opening lists (and probes) files, `gatherMany` and
 * `getMany` decode the requested ones on the folder's decoding threads into `[h, w, c]` float32
 * values in [0, 1], HWC. Decoded images are kept in a byte-bounded LRU cache, so memory stays
 * bounded however large the folder. Iterate it with a `DataLoader` and `for await`, which reads
 * each batch with one `gatherMany`; `get` is synchronous and cannot decode.
 */
export class ImageFolderDataset implements GatheringDataset<Example> {
  readonly length: number;
  /** `[height, width, channels]` of every example's `x`. */
  readonly shape: [number, number, number];
  /** What a batch holds: float32 `[h, w, c]` images and int32 class labels. */
  readonly schema: {
    /** One image: float32 `[height, width, channels]`, values in [0, 1]. */
    x: TensorSpec;
    /** Its class label: an int32 scalar. */
    y: TensorSpec;
  };
  /** Class names by label, shared by the folder's splits. */
  readonly classes: string[];
  /** Path of each example's image, by index: joined to `root` in Node, '/'-separated below the root in a browser. */
  readonly files: string[];
  /** Class label of each example, by index. */
  readonly labels: Int32Array;
  private readonly cache: ByteLru<number, Uint8Array>;
  /** Oriented source sizes found at opening (0 when not probed), so decoding skips the header. */
  private readonly heights: Int32Array;
  private readonly widths: Int32Array;
  private readonly inFlight = new Map<number, Promise<Uint8Array>>();
  private readonly bad = new Set<number>();
  private closed = false;
  private readonly decoded: DecodeStats = { threads: 0, caller: 0 };

  /** @internal Made by `imageFolder`. */
  constructor(
    entries: (ImageEntry & { height?: number; width?: number })[],
    private readonly shared: Shared,
  ) {
    this.length = entries.length;
    this.heights = Int32Array.from(entries, (e) => e.height ?? 0);
    this.widths = Int32Array.from(entries, (e) => e.width ?? 0);
    this.files = entries.map((e) => e.file);
    this.labels = Int32Array.from(entries, (e) => e.label);
    this.classes = shared.classes;
    this.shape = [shared.size[0], shared.size[1], shared.channels];
    this.schema = { x: { shape: [...this.shape], dtype: 'float32' }, y: { shape: [], dtype: 'int32' } };
    this.cache = new ByteLru<number, Uint8Array>(shared.cacheBytes);
  }

  get(index: number): Example {
    throw new KilnError('E_ASYNC_DATASET', `ImageFolderDataset.get(${index}): images are decoded on demand, asynchronously`, {
      hint: 'iterate a DataLoader with `for await`, call getMany(indices), or materialize() a small folder into memory',
    });
  }

  /** The examples at `indices`, in that order, each with its own `x` (what `gatherMany` gives, row by row). */
  async getMany(indices: ArrayLike<number>): Promise<Example[]> {
    const { x, y } = await this.gatherMany(indices);
    const size = this.shape[0] * this.shape[1] * this.shape[2];
    return Array.from(y, (label, k) => ({ x: x.slice(k * size, (k + 1) * size), y: label }));
  }

  /**
   * The images at `indices` as one batch: `x` [n, h, w, c] float32 in [0, 1] and their labels, each
   * in one buffer. Cached images are converted here; the others are decoded on the folder's threads
   * and arrive already converted, in one buffer that becomes `x` itself when the whole batch was
   * decoded in one piece (the usual case in a first epoch). Under skipBad an image failing to decode
   * gives the next readable image of the split, label and all.
   */
  async gatherMany(
    indices: ArrayLike<number>,
    options: GatherOptions = {},
  ): Promise<{
    /** The images, [n, height, width, channels] row-major. */
    x: Float32Array;
    /** Their class labels (under skipBad, the replacement image's). */
    y: Int32Array;
  }> {
    if (this.closed) throw new ConfigError('ImageFolderDataset', 'an open dataset', 'closed', 'open the folder again with imageFolder()');
    const n = indices.length;
    const { channels, host } = this.shared;
    const pixels = this.shape[0] * this.shape[1];
    const size = pixels * channels;
    const y = new Int32Array(n);
    const hits: { k: number; px: Uint8Array }[] = [];
    // Positions to decode in this batch, those asked for twice, and those left to the per-image path.
    const todo: number[] = [];
    const dups: number[] = [];
    const rest: number[] = [];
    const seen = new Set<number>();
    for (let k = 0; k < n; k++) {
      const i = indices[k];
      if (!(Number.isInteger(i) && i >= 0 && i < this.length)) throw new ConfigError('ImageFolderDataset indices', `integers in [0, ${this.length})`, i);
      y[k] = this.labels[i];
      const px = this.cache.get(i);
      if (px) hits.push({ k, px });
      else if (this.bad.has(i) || this.inFlight.has(i) || !host.decodeRows) rest.push(k);
      else if (seen.has(i)) dups.push(k);
      else {
        seen.add(i);
        todo.push(k);
      }
    }
    // A batch decoded whole in one piece is x as it arrives; otherwise its rows are copied in.
    const whole = todo.length === n && n > 0 && n <= CHUNK;
    let x: Float32Array | undefined = whole ? undefined : new Float32Array(n * size);
    if (todo.length > 0) {
      const rows = await this.decodeRows(indices, todo, rest, x, options.wanted);
      x ??= rows;
    }
    const out = x as Float32Array;
    for (const { k, px } of hits) pixelsToFloat(px, pixels, channels, out, k * size);
    // An index asked for twice in one batch: a cache hit now, or (cache off, or it failed) the per-image path.
    for (const k of dups) {
      const px = this.cache.get(indices[k]);
      if (px) pixelsToFloat(px, pixels, channels, out, k * size);
      else rest.push(k);
    }
    await Promise.all(
      rest.map(async (k) => {
        const { px, label } = await this.example(indices[k], true);
        pixelsToFloat(px, pixels, channels, out, k * size);
        y[k] = label;
      }),
    );
    return { x: out, y };
  }

  /**
   * Decodes the batch positions `todo` on the host's threads in chunks (one `decodeRows` each),
   * copying their rows into `x` when given (else returning the one chunk's rows) and caching their
   * pixels; positions that fail go to `rest`, the per-image path, which applies skipBad.
   */
  private async decodeRows(indices: ArrayLike<number>, todo: number[], rest: number[], x: Float32Array | undefined, wanted?: Promise<void>): Promise<Float32Array> {
    const { host, size, resize, channels, limiter, cacheBytes } = this.shared;
    const rowSize = size[0] * size[1] * channels;
    const decodeRows = (host.decodeRows as NonNullable<ImageHost['decodeRows']>).bind(host);
    const keep = cacheBytes > 0;
    let only: Float32Array | undefined;
    const parts: Promise<void>[] = [];
    for (let s = 0; s < todo.length; s += CHUNK) {
      const ks = todo.slice(s, s + CHUNK);
      const items = ks.map((k) => {
        const i = indices[k];
        return { file: this.files[i], source: this.heights[i] > 0 ? { height: this.heights[i], width: this.widths[i] } : undefined };
      });
      parts.push(
        limiter.run(() => decodeRows(items, { size, resize, channels }, keep, wanted), ks.length).then(({ rows, pixels, errors, byCaller }) => {
          this.decoded.caller += byCaller;
          this.decoded.threads += ks.length - errors.size - byCaller;
          if (x) ks.forEach((k, j) => x.set(rows.subarray(j * rowSize, (j + 1) * rowSize), k * rowSize));
          else only = rows;
          ks.forEach((k, j) => {
            if (errors.has(j)) return void rest.push(k);
            // The cache keeps a copy of just this image (the answer is a view into one buffer per message).
            const px = pixels?.[j];
            if (px && !this.closed) this.cache.set(indices[k], px.slice());
          });
        }),
      );
    }
    await Promise.all(parts);
    return (x ?? only) as Float32Array;
  }

  /** Decodes the images at `indices` (default: all) into an in-memory `ArrayDataset`, for what fits in memory. */
  async materialize(indices?: ArrayLike<number>): Promise<ArrayDataset> {
    const idx = indices ?? Array.from({ length: this.length }, (_, i) => i);
    const size = this.shape[0] * this.shape[1] * this.shape[2];
    const x = new Float32Array(idx.length * size);
    const y = new Int32Array(idx.length);
    for (let s = 0; s < idx.length; s += CHUNK) {
      const part = await this.gatherMany(Array.from({ length: Math.min(CHUNK, idx.length - s) }, (_, k) => idx[s + k]));
      x.set(part.x, s * size);
      y.set(part.y, s);
    }
    return new ArrayDataset(x, y, [...this.shape], this.classes);
  }

  /**
   * Images decoded for `gatherMany` in whole batches so far, by the decoding threads and by the
   * calling thread (a late batch taken over, see `stealLate`); images read one by one (a
   * replacement under skipBad, `workers: 0`) are not counted.
   */
  decodeStats(): DecodeStats {
    return { ...this.decoded };
  }

  /** The cache's own accounting (bytes held never exceed `cacheBytes`). */
  cacheStats(): CacheStats {
    return this.cache.stats();
  }

  /** Drops the cache; later reads fail. Closing the last open split of a folder stops its decoding threads. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    if (--this.shared.open === 0) this.shared.host.close?.();
  }

  /**
   * Image `i` as 8-bit pixels and its label, or under skipBad the next readable one after it when
   * its file fails to decode. `missed`: the caller has just looked `i` up in the cache (so the
   * lookup is not counted twice).
   */
  private async example(i: number, missed = false): Promise<{ px: Uint8Array; label: number }> {
    for (let k = 0; k < this.length; k++) {
      const j = (i + k) % this.length;
      if (this.bad.has(j)) continue;
      try {
        return { px: await this.compact(j, missed && j === i), label: this.labels[j] };
      } catch (e) {
        if (!(this.shared.skipBad && e instanceof DataFormatError)) throw e;
        if (!this.bad.has(j)) {
          this.bad.add(j);
          this.shared.skipped.push({ file: this.files[j], reason: firstLine(e) });
          this.shared.warn(`warning: skipping ${this.files[j]} (replaced by the next readable image): ${firstLine(e)}`);
        }
      }
    }
    throw new DataFormatError(this.files[i], 'no readable image left in the split', { hint: 'every file failed to decode; see the warnings' });
  }

  /** Image `i` as 8-bit pixels (`compactPixels` form): from the cache, a decode in flight, or a new decode. Never written to. */
  private async compact(i: number, missed: boolean): Promise<Uint8Array> {
    const hit = missed ? undefined : this.cache.get(i);
    if (hit) return hit;
    const pending = this.inFlight.get(i);
    if (pending) return pending;
    const { host, size, resize, channels, limiter } = this.shared;
    const source = this.heights[i] > 0 ? { height: this.heights[i], width: this.widths[i] } : undefined;
    const p = limiter.run(() => host.decode(this.files[i], { size, resize, channels, source }));
    this.inFlight.set(i, p);
    try {
      const px = await p;
      // A decoding thread's images arrive as views into one buffer per message: the cache keeps a
      // copy of just this image, so that what it counts is what it holds.
      if (!this.closed) this.cache.set(i, px.byteLength === px.buffer.byteLength ? px : px.slice());
      return px;
    } finally {
      this.inFlight.delete(i);
    }
  }
}

/**
 * Opens a folder whose layout is known: probes headers (finding bad files and the default size),
 * then makes one lazy dataset per split. `rootName` names the folder in messages; `host` reads files,
 * at most `concurrency` at once; it is closed with the folder (or here, if opening fails).
 */
export async function openImageFolder(rootName: string, layout: FolderLayout, host: ImageHost, options: ImageFolderOptions, concurrency: number): Promise<ImageFolder> {
  try {
    return await open(rootName, layout, host, options, concurrency);
  } catch (e) {
    host.close?.();
    throw e;
  }
}

async function open(rootName: string, layout: FolderLayout, host: ImageHost, options: ImageFolderOptions, concurrency: number): Promise<ImageFolder> {
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ConfigError('imageFolder.channels', '1 or 3', channels);
  const resize = options.resize ?? 'stretch';
  if (!RESIZE_MODES.includes(resize)) throw new ConfigError('imageFolder.resize', RESIZE_MODES.join(' | '), resize);
  const cacheBytes = options.cacheBytes ?? 256 * 1024 * 1024;
  if (!(Number.isFinite(cacheBytes) && cacheBytes >= 0)) throw new ConfigError('imageFolder.cacheBytes', 'a number of bytes >= 0', options.cacheBytes);
  let size = options.size === undefined ? undefined : checkSize(options.size, 'imageFolder.size');
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const skipBad = options.skipBad ?? false;
  const skipped: SkippedImage[] = [];
  const limiter = new Limiter(concurrency);

  const splits = Object.entries(layout.splits) as ['train' | 'val' | 'test', ImageEntry[]][];
  const kept = new Map<string, (ImageEntry & { height?: number; width?: number })[]>();
  for (const [name, entries] of splits) {
    if (options.probe === false) {
      kept.set(name, entries);
      continue;
    }
    const probeLimit = new Limiter(concurrency);
    const probes = await Promise.all(entries.map((e) => probeLimit.run(() => host.probe(e.file).then((s): { height: number; width: number } | Error => s, (err: Error) => err))));
    const good: (ImageEntry & { height?: number; width?: number })[] = [];
    probes.forEach((p, k) => {
      if (!(p instanceof Error)) {
        size ??= [p.height, p.width];
        good.push({ ...entries[k], ...p });
        return;
      }
      if (!(skipBad && p instanceof DataFormatError)) throw p;
      skipped.push({ file: entries[k].file, reason: firstLine(p) });
      warn(`warning: skipping ${entries[k].file}: ${firstLine(p)}`);
    });
    kept.set(name, good);
  }
  if (size === undefined) {
    const first = layout.splits.train[0].file;
    const s = await host.probe(first);
    size = [s.height, s.width];
  }
  const total = splits.reduce((a, [, e]) => a + e.length, 0);
  if (skipped.length > 0) warn(`skipped ${skipped.length} of ${total} images in '${rootName}' that could not be read (listed in skipped)`);
  if ((kept.get('train') ?? []).length === 0) {
    throw new DataFormatError(rootName, 'no readable training images in the folder', { expected: 'at least one image a decoder can read', found: `${skipped.length} unreadable` });
  }
  const train = kept.get('train') as (ImageEntry & { height?: number; width?: number })[];
  // Threads that decode for the first time are slow (JIT and WebAssembly tiers): done here, not in the first epoch's steps.
  await host.warmUp?.(
    train.slice(0, WARM_UP_IMAGES).map((e) => ({ file: e.file, source: e.height ? { height: e.height, width: e.width as number } : undefined })),
    { size, resize, channels },
  );
  const shared: Shared = { host, open: kept.size, size, resize, channels, skipBad, warn, cacheBytes, limiter, skipped, classes: layout.classes };
  const make = (name: string) => (kept.has(name) ? new ImageFolderDataset(kept.get(name) as ImageEntry[], shared) : undefined);
  const folder: ImageFolder = {
    root: rootName,
    classes: layout.classes,
    train: make('train') as ImageFolderDataset,
    val: make('val'),
    test: make('test'),
    skipped,
    close() {
      for (const d of [folder.train, folder.val, folder.test]) d?.close();
    },
  };
  return folder;
}
