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

export class WorkerPoolHost implements ImageHost {
  private readonly slots: Slot[];
  private nextId = 0;
  private closed = false;

  constructor(threads: number, limits: ImageLimits = {}) {
    const script = workerScript();
    this.slots = Array.from({ length: threads }, () => this.spawn(script, limits));
  }

  private spawn(script: string, limits: ImageLimits): Slot {
    const slot: Slot = { worker: new Worker(script, { workerData: { maxPixels: limits.maxPixels, maxFileBytes: limits.maxFileBytes } }), pending: new Map(), batches: new Map(), rowsPending: 0, outbox: new Map() };
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
  async decodeRows(items: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean): Promise<DecodedRows> {
    if (this.closed) throw new KilnError('E_WORKER', 'the image decoding pool is closed', { hint: 'open the folder again' });
    const parts = Math.max(1, Math.min(this.slots.length, Math.floor(items.length / ROWS_PER_PART)));
    const per = Math.ceil(items.length / parts);
    const answers: Promise<DecodedRows>[] = [];
    for (let s = 0; s < items.length; s += per) answers.push(this.rowsOn(this.leastBusy(), items.slice(s, s + per), spec, keep));
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
    return { rows, pixels, errors };
  }

  /** One `rows` message to `slot`, and its answer unpacked (pixels as views into the answer's buffer). */
  private rowsOn(slot: Slot, chunk: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean): Promise<DecodedRows> {
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
      const msg: DecodeRequests = { op: 'rows', ids, files, spec: { size: spec.size, resize: spec.resize, channels: spec.channels }, sources, batch, keep };
      slot.worker.postMessage(msg, [ids.buffer, sources.buffer]);
    }).then((reply) => {
      const errors = new Map<number, Error>();
      for (const [k, e] of reply.errors) errors.set(k, receiveError(e));
      let pixels: (Uint8Array | undefined)[] | undefined;
      if (keep) {
        const lengths = reply.lengths as Int32Array;
        pixels = new Array(chunk.length);
        for (let k = 0, at = 0; k < chunk.length; k++) {
          if (lengths[k] < 0) continue;
          pixels[k] = new Uint8Array(reply.pixels as ArrayBuffer, at, lengths[k]);
          at += lengths[k];
        }
      }
      return { rows: new Float32Array(reply.rows as ArrayBuffer), pixels, errors };
    });
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
