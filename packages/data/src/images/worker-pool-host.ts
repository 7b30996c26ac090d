/**
 * Node: an `ImageHost` that runs `SharpHost` on a pool of worker threads.
 *
 * Why threads on top of sharp's own: sharp decodes on libuv's thread pool, but the JavaScript around
 * each image — opening and checking the file, building the sharp pipeline, reading the header, the
 * float conversion — stays on the calling thread. Measured on 28×28 JPEGs (tools/bench/image-folder.mjs,
 * docs/benchmarks.md "Image folders") that was ~0.75 ms of main-thread time per image, ~50 ms per
 * batch of 64 taken from the training step, which runs on the same thread. With the pool a batch
 * (`decodeRows`) costs the main thread one message each way: a worker decodes every image of it and
 * converts it to float32 in one buffer, which is transferred and becomes the batch's tensor.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DataFormatError, KilnError, NotFoundError } from '@kiln/core';
import type { DecodedRows, DecodeItem, DecodeSpec, ImageHost, ImageLimits } from './image-host.js';
import { pixelsToFloat } from './geometry.js';
import { SharpHost } from './sharp-host.js';
import { preparePlainJpeg } from './small-jpeg.js';

/**
 * @internal One message to a decoding worker: several files, one operation, one spec. Messages
 * carry typed arrays and strings rather than an object per image: the structured clone of objects
 * costs ~1.5–5 µs each, on the main thread for requests (measured).
 */
export interface DecodeRequests {
  /** `rows`: decoded and converted to float32 model input (`decodeRows`); `decode`: 8-bit pixels. */
  op: 'probe' | 'decode' | 'rows';
  ids: Int32Array;
  files: string[];
  /** The spec shared by every decode of the message, without `source`. */
  spec?: Omit<DecodeSpec, 'source'>;
  /** Decodes: each file's oriented source size from the probe, `[height, width]` pairs, 0 when unknown. */
  sources?: Int32Array;
  /** Set on a `rows` message: answered as a whole, this number echoed. */
  batch?: number;
  /** `rows`: send each image's 8-bit pixels too (for the cache). */
  keep?: boolean;
  /**
   * `rows`, optionally: one flag per image on shared memory, claimed with a compare-and-swap by
   * whichever thread decodes it first: 2 the worker, 1 the training thread (which takes images from
   * the end of the batch while it waits). A claimed image is skipped: its row stays zero, length −1.
   */
  claims?: Int32Array;
  /** `rows`: a warm-up request (`warmUp`), answered but unused; the `lateMs` test hook does not stall it. */
  warm?: boolean;
}

/** @internal The parts of an error that cross the thread boundary. */
export interface SentError {
  kind: 'format' | 'missing' | 'other';
  file: string;
  problem: string;
  offset?: number;
  expected?: string;
  found?: string;
  hint?: string;
}

/**
 * @internal A worker's answer to one `DecodeRequests`, in its order. Decodes: `lengths[k]` bytes
 * of pixels follow the previous ones in `pixels` (one buffer, one transfer: a transfer costs the
 * sender ~20 µs however small); rows: `rows` holds every image's float32 row, and with `keep` the
 * pixels come too, as for decodes; probes: `sizes[2k]`, `sizes[2k + 1]` = height, width. A failed
 * request has length −1 (rows: a zero row) and its error in `errors` (as `[k, error]`).
 */
export interface DecodeReplies {
  batch?: number;
  ids: Int32Array;
  lengths?: Int32Array;
  pixels?: ArrayBuffer;
  rows?: ArrayBuffer;
  sizes?: Int32Array;
  errors: [number, SentError][];
}

/** @internal */
export function sendError(e: unknown, file: string): SentError {
  if (e instanceof DataFormatError) return { kind: 'format', file, problem: e.message.split('\n')[0], offset: e.offset, expected: e.expected, found: e.found, hint: e.hint };
  if (e instanceof NotFoundError) return { kind: 'missing', file, problem: e.message.split('\n')[0] };
  return { kind: 'other', file, problem: e instanceof Error ? e.message : String(e) };
}

function receiveError(e: SentError): Error {
  if (e.kind === 'format') return new DataFormatError(e.file, e.problem, { offset: e.offset, expected: e.expected, found: e.found, hint: e.hint });
  if (e.kind === 'missing') return new NotFoundError(`image file '${e.file}'`, [e.file]);
  return new KilnError('E_WORKER', `decoding ${e.file} failed in a worker thread: ${e.problem}`);
}

/**
 * The worker script, built beside this bundle as decode-worker.cjs; when running from the sources
 * it is the built copy in dist/. `__dirname` exists in both bundles (the ESM one defines it in its
 * banner) and under vitest.
 */
function workerScript(): string {
  const here = __dirname;
  const candidates = [path.join(here, 'decode-worker.cjs'), path.join(here, '..', 'dist', 'decode-worker.cjs'), path.join(here, '..', '..', 'dist', 'decode-worker.cjs')];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new NotFoundError('the image decoding worker (decode-worker.cjs)', candidates, 'build @kiln/data (npx nx run @kiln/data:build), or pass workers: 0');
  return found;
}

/** Decoding threads by default: one core is left to the training step's own thread; more than 4 rarely pays (libuv runs 4 sharp jobs at once). */
export function defaultDecodeThreads(): number {
  return Math.min(4, Math.max(1, os.availableParallelism() - 1));
}

type Answer = { size?: { height: number; width: number }; data?: Uint8Array };

/** Claims on a `rows` message's shared flags (see `DecodeRequests.claims`). */
const CALLER = 1;
const WORKER = 2;

/**
 * What the calling thread decoded of a late batch: rows (zeros elsewhere), pixels and errors at the
 * positions it covered — those it claimed, and those the worker had claimed that it decoded too.
 */
interface Stolen {
  rows: Float32Array;
  pixels: (Uint8Array | undefined)[];
  errors: Map<number, Error>;
  /** Positions covered (decoded, or failed) by the caller. */
  covered: boolean[];
  /** How many positions are covered. */
  count: number;
}

/** Images the caller decodes between two looks at whether the worker's answer has come (~0.2 ms). */
const LOOK_EVERY = 8;

/** Resolves (with undefined) after the messages already received by this thread have been handled. */
const afterPendingMessages = () => new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)));

/**
 * A `decodeRows` request goes to one worker whole (one message each way, its rows one buffer) unless
 * it has at least twice this many images: a large request (`materialize`) is shared among the workers.
 */
const ROWS_PER_PART = 64;

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: Answer) => void; reject: (e: Error) => void }>;
  /** `rows` messages awaiting their answer, by batch number. */
  batches: Map<number, { resolve: (r: DecodeReplies) => void; reject: (e: Error) => void }>;
  /** Images of the `rows` messages awaiting their answer. */
  rowsPending: number;
  /** Requests made in this turn of the event loop, by operation and spec, each group sent as one message at its end. */
  outbox: Map<string, { op: 'probe' | 'decode'; spec?: DecodeSpec; ids: number[]; files: string[]; sources: number[] }>;
}

/** Options of `WorkerPoolHost` beyond the image limits. */
export interface WorkerPoolOptions {
  /**
   * Whether the calling thread decodes, while it waits for a `decodeRows` answer, the images of
   * that batch the workers have not started and that are cheap here (default true; see `stealRows`).
   */
  steal?: boolean;
  /** Test hook: each worker stalls this many ms before each image it decodes for `decodeRows`, as a thread starved of a core. */
  lateMs?: number;
}

export class WorkerPoolHost implements ImageHost {
  private readonly slots: Slot[];
  private nextId = 0;
  private closed = false;
  /** Decodes on the calling thread what it takes over from a late worker (cheap files only). */
  private readonly inline: SharpHost | undefined;

  constructor(threads: number, limits: ImageLimits = {}, options: WorkerPoolOptions = {}) {
    const script = workerScript();
    this.slots = Array.from({ length: threads }, () => this.spawn(script, limits, options.lateMs));
    if (options.steal ?? true) {
      this.inline = new SharpHost(limits);
      // Compiled while the folder opens, not when a first batch is late.
      void preparePlainJpeg();
    }
  }

  private spawn(script: string, limits: ImageLimits, lateMs?: number): Slot {
    const slot: Slot = { worker: new Worker(script, { workerData: { maxPixels: limits.maxPixels, maxFileBytes: limits.maxFileBytes, lateMs } }), pending: new Map(), batches: new Map(), rowsPending: 0, outbox: new Map() };
    // An idle pool must not keep the process alive; a busy one must (the caller awaits it).
    slot.worker.unref();
    const failAll = (err: Error) => {
      for (const p of [...slot.pending.values(), ...slot.batches.values()]) p.reject(err);
      slot.pending.clear();
      slot.batches.clear();
      slot.rowsPending = 0;
    };
    slot.worker.on('message', (msg: DecodeReplies) => {
      if (msg.batch !== undefined) {
        slot.rowsPending -= msg.ids.length;
        slot.batches.get(msg.batch)?.resolve(msg);
        slot.batches.delete(msg.batch);
        if (slot.pending.size + slot.batches.size === 0) slot.worker.unref();
        return;
      }
      const { ids, lengths, pixels, sizes, errors } = msg;
      const failed = new Map(errors);
      let at = 0;
      for (let k = 0; k < ids.length; k++) {
        const length = lengths ? lengths[k] : 0;
        const p = slot.pending.get(ids[k]);
        if (p) {
          slot.pending.delete(ids[k]);
          const error = failed.get(k);
          if (error) p.reject(receiveError(error));
          else if (lengths && pixels) p.resolve({ data: new Uint8Array(pixels, at, length) });
          else if (sizes) p.resolve({ size: { height: sizes[2 * k], width: sizes[2 * k + 1] } });
        }
        if (length > 0) at += length;
      }
      if (slot.pending.size + slot.batches.size === 0) slot.worker.unref();
    });
    slot.worker.on('error', (err) => failAll(new KilnError('E_WORKER', 'an image decoding worker failed', { found: err.message, cause: err })));
    // A worker that dies mid-file (killed, out of memory) would otherwise leave its callers waiting forever.
    slot.worker.on('exit', (code) => failAll(new KilnError('E_WORKER', 'an image decoding worker exited while decoding', { found: `exit code ${code}` })));
    return slot;
  }

  /**
   * Queues a request on the least busy worker. A batch's requests arrive in one turn of the event
   * loop and leave as one message per worker (and come back as one), so the main thread pays for a
   * few messages per batch rather than one per image.
   */
  private call(op: 'probe' | 'decode', file: string, spec?: DecodeSpec): Promise<Answer> {
    if (this.closed) return Promise.reject(new KilnError('E_WORKER', 'the image decoding pool is closed', { hint: 'open the folder again' }));
    const slot = this.leastBusy();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (slot.pending.size + slot.batches.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      const key = spec ? `${op} ${spec.size[0]} ${spec.size[1]} ${spec.resize} ${spec.channels}` : op;
      let group = slot.outbox.get(key);
      if (!group) {
        group = { op, spec, ids: [], files: [], sources: [] };
        slot.outbox.set(key, group);
        if (slot.outbox.size === 1) queueMicrotask(() => this.flush(slot));
      }
      group.ids.push(id);
      group.files.push(file);
      group.sources.push(spec?.source?.height ?? 0, spec?.source?.width ?? 0);
    });
  }

  /** The worker with the fewest images waiting. */
  private leastBusy(): Slot {
    const load = (s: Slot) => s.pending.size + s.rowsPending;
    return this.slots.reduce((a, b) => (load(b) < load(a) ? b : a));
  }

  private flush(slot: Slot): void {
    const groups = [...slot.outbox.values()];
    slot.outbox.clear();
    if (this.closed) return;
    for (const g of groups) {
      const ids = Int32Array.from(g.ids);
      const msg: DecodeRequests = { op: g.op, ids, files: g.files };
      if (g.spec) {
        const sources = Int32Array.from(g.sources);
        msg.spec = { size: g.spec.size, resize: g.spec.resize, channels: g.spec.channels };
        msg.sources = sources;
        slot.worker.postMessage(msg, [ids.buffer, sources.buffer]);
      } else {
        slot.worker.postMessage(msg, [ids.buffer]);
      }
    }
  }

  async probe(file: string): Promise<{ height: number; width: number }> {
    return (await this.call('probe', file)).size as { height: number; width: number };
  }

  /** The image's pixels: a view into the buffer its worker's message brought (see `DecodeReplies`). */
  async decode(file: string, spec: DecodeSpec): Promise<Uint8Array> {
    return (await this.call('decode', file, spec)).data as Uint8Array;
  }

  /**
   * Images decoded and converted to float32 rows on the workers: a batch on one worker, one message
   * each way, the rows arriving as one transferred buffer the caller can make a tensor of; a request
   * of at least `2 · ROWS_PER_PART` images is shared among the workers and its parts joined here.
   */
  async decodeRows(items: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean, wanted?: Promise<void>): Promise<DecodedRows> {
    if (this.closed) throw new KilnError('E_WORKER', 'the image decoding pool is closed', { hint: 'open the folder again' });
    const parts = Math.max(1, Math.min(this.slots.length, Math.floor(items.length / ROWS_PER_PART)));
    const per = Math.ceil(items.length / parts);
    const answers: Promise<DecodedRows>[] = [];
    for (let s = 0; s < items.length; s += per) answers.push(this.rowsOn(this.leastBusy(), items.slice(s, s + per), spec, keep, wanted));
    const got = await Promise.all(answers);
    if (got.length === 1) return got[0];
    const size = spec.size[0] * spec.size[1] * spec.channels;
    const rows = new Float32Array(items.length * size);
    const errors = new Map<number, Error>();
    const pixels: (Uint8Array | undefined)[] | undefined = keep ? [] : undefined;
    got.forEach((part, p) => {
      rows.set(part.rows, p * per * size);
      for (const [k, e] of part.errors) errors.set(p * per + k, e);
      pixels?.push(...(part.pixels as (Uint8Array | undefined)[]));
    });
    return { rows, pixels, errors, byCaller: got.reduce((t, part) => t + part.byCaller, 0) };
  }

  /**
   * One `rows` message to `slot`, and its answer unpacked (pixels as views into the answer's
   * buffer). With `wanted` the images are claimed one by one on shared memory, and if the answer
   * has not come when the caller starts waiting, the caller takes over what is left (`stealRows`);
   * the answer is then awaited only for the images the worker had claimed, if any.
   */
  private async rowsOn(slot: Slot, chunk: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean, wanted?: Promise<void>): Promise<DecodedRows> {
    const n = chunk.length;
    const claims = wanted && this.inline ? new Int32Array(new SharedArrayBuffer(4 * n)) : undefined;
    const answer = this.postRows(slot, chunk, spec, keep, claims);
    let answered = false;
    // An answer nobody awaits any more (every image taken over) must not fail as unhandled.
    answer.then(
      () => (answered = true),
      () => (answered = true),
    );
    let stolen: Stolen | undefined;
    if (claims && wanted) {
      const first = await Promise.race([answer, wanted.then(afterPendingMessages)]);
      // A message already received is handled before `afterPendingMessages` resolves: nothing is taken from an answer that has come.
      if (first === undefined && !answered && !this.closed) stolen = await this.stealRows(chunk, spec, keep, claims, () => answered);
    }
    // Every image covered by the caller: the worker's answer, whenever it comes, is not needed.
    if (stolen && stolen.count === n) return { rows: stolen.rows, pixels: keep ? stolen.pixels : undefined, errors: stolen.errors, byCaller: n - stolen.errors.size };
    const reply = await answer;
    const errors = new Map<number, Error>();
    for (const [k, e] of reply.errors) errors.set(k, receiveError(e));
    let pixels: (Uint8Array | undefined)[] | undefined;
    if (keep) {
      const lengths = reply.lengths as Int32Array;
      pixels = new Array(n);
      for (let k = 0, at = 0; k < n; k++) {
        if (lengths[k] < 0) continue;
        pixels[k] = new Uint8Array(reply.pixels as ArrayBuffer, at, lengths[k]);
        at += lengths[k];
      }
    }
    const rows = new Float32Array(reply.rows as ArrayBuffer);
    if (stolen) {
      // The worker skipped what the caller claimed: its rows are zeros there.
      const size = spec.size[0] * spec.size[1] * spec.channels;
      for (let k = 0; k < n; k++) {
        // Also decoded by the worker (the caller covered it too, but the answer came): the worker's row, the same bytes.
        if (claims?.[k] !== CALLER) continue;
        rows.set(stolen.rows.subarray(k * size, (k + 1) * size), k * size);
        if (pixels) pixels[k] = stolen.pixels[k];
        const e = stolen.errors.get(k);
        if (e) errors.set(k, e);
      }
    }
    const mine = stolen ? chunk.reduce((t, _, k) => t + (claims?.[k] === CALLER && !stolen.errors.has(k) ? 1 : 0), 0) : 0;
    return { rows, pixels, errors, byCaller: mine };
  }

  /** Posts one `rows` message to `slot`; resolves with the worker's answer. */
  private postRows(slot: Slot, chunk: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean, claims: Int32Array | undefined, warm = false): Promise<DecodeReplies> {
    const batch = this.nextId++;
    const ids = Int32Array.from(chunk, (_, k) => k);
    const sources = new Int32Array(2 * chunk.length);
    chunk.forEach((it, k) => {
      sources[2 * k] = it.source?.height ?? 0;
      sources[2 * k + 1] = it.source?.width ?? 0;
    });
    const files = chunk.map((it) => it.file);
    return new Promise<DecodeReplies>((resolve, reject) => {
      if (slot.pending.size + slot.batches.size === 0) slot.worker.ref();
      slot.batches.set(batch, { resolve, reject });
      slot.rowsPending += chunk.length;
      const msg: DecodeRequests = { op: 'rows', ids, files, spec: { size: spec.size, resize: spec.resize, channels: spec.channels }, sources, batch, keep, claims, warm };
      slot.worker.postMessage(msg, [ids.buffer, sources.buffer]);
    });
  }

  /**
   * The caller's share of a late batch. Policy: the training thread is idle (it awaits this batch),
   * so every image it can decode cheaply is better decoded now than waited for, and nothing else is:
   *  - only files `SharpHost.decodeIfCheap` takes (small plain JPEGs already at the model's size,
   *    ~20 µs of decoding and ~8 µs of reading on this thread, measured in docs/benchmarks.md); an
   *    image that needs libvips (resizing, PNG, EXIF, ICC, …) would cost this thread ~0.5 ms and
   *    libuv's threads more, and is left to the worker, as is a file that cannot be read (the
   *    worker reports it with the usual typed error);
   *  - first the images the worker has not started, from the end of the batch backwards while the
   *    worker goes forwards, each claimed by a compare-and-swap (the worker then skips it): nothing
   *    is decoded twice;
   *  - then, if the answer has still not come, the cheap images the worker has claimed as well: a
   *    worker that has started a batch and not answered is waiting for a core (measured: stalls of
   *    50–200 ms at load 10 on 2 cores), and decoding an image again costs ~25 µs. The caller looks
   *    for the answer every `LOOK_EVERY` images and stops as soon as it has come, so the work it
   *    may duplicate is bounded by what it would otherwise have spent waiting.
   * Pixels are those `decode` gives (the same function decodes them), so a batch is the same
   * whichever thread decoded which image.
   */
  private async stealRows(chunk: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean, claims: Int32Array, answered: () => boolean): Promise<Stolen> {
    const inline = this.inline as SharpHost;
    const n = chunk.length;
    const pixels = spec.size[0] * spec.size[1];
    const size = pixels * spec.channels;
    const out: Stolen = { rows: new Float32Array(n * size), pixels: new Array<Uint8Array | undefined>(n), errors: new Map(), covered: new Array<boolean>(n).fill(false), count: 0 };
    /** Decodes position k here if cheap (and `claim` agrees); false when left to the worker. */
    const take = async (k: number, claim: () => boolean): Promise<boolean> => {
      let px: Uint8Array | undefined;
      try {
        px = await inline.decodeIfCheap(chunk[k].file, { ...spec, source: chunk[k].source }, claim);
      } catch (e) {
        out.errors.set(k, e as Error);
        px = undefined;
      }
      if (!px && !out.errors.has(k)) return false;
      if (px) {
        pixelsToFloat(px, pixels, spec.channels, out.rows, k * size);
        if (keep) out.pixels[k] = px;
      }
      out.covered[k] = true;
      out.count++;
      return true;
    };
    for (let k = n - 1; k >= 0; k--) {
      if (Atomics.load(claims, k) === WORKER) break;
      await take(k, () => Atomics.compareExchange(claims, k, 0, CALLER) === 0);
    }
    let since = 0;
    for (let k = 0; k < n && !answered() && !this.closed; k++) {
      if (out.covered[k] || Atomics.load(claims, k) !== WORKER) continue;
      if ((await take(k, () => true)) && ++since % LOOK_EVERY === 0) await afterPendingMessages();
    }
    return out;
  }

  /**
   * One `rows` request of `items` to every worker, and (when late batches may be taken over) the
   * same images decoded once here: a fresh worker took 80–420 ms for its first batch of 64 small
   * JPEGs and 10–60 ms for each of the next ~15 (against ~3 ms warm), and this thread's first
   * inline batch ~50 ms (measured at load ~10; docs/benchmarks.md "Image folders").
   */
  async warmUp(items: DecodeItem[], spec: Omit<DecodeSpec, 'source'>): Promise<void> {
    if (this.closed || items.length === 0) return;
    const work: Promise<unknown>[] = this.slots.map((slot) => this.postRows(slot, items, spec, false, undefined, true));
    if (this.inline) {
      const inline = this.inline;
      await preparePlainJpeg();
      for (const it of items) work.push(inline.decodeIfCheap(it.file, { ...spec, source: it.source }, () => true));
    }
    await Promise.all(work.map((p) => p.catch(() => undefined)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots) {
      s.worker.removeAllListeners('exit');
      void s.worker.terminate();
    }
  }
}
