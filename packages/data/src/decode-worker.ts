/**
 * Entry point of an image-decoding worker thread (built as its own file, dist/decode-worker.cjs,
 * started by images/worker-pool-host.ts). Each message is a list of probes or decodes for
 * `SharpHost`, answered with one message once all are done: for `rows`, every image converted to
 * the model's float32 input in one transferred buffer (so the training thread makes the batch's
 * tensor from it in one call) and, when asked, the 8-bit pixels for the cache in another; for
 * `decode`, the 8-bit pixels only. Errors travel as their parts, which the main thread rebuilds into
 * the same typed errors.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pixelsToFloat } from './images/geometry.js';
import { SharpHost } from './images/sharp-host.js';
import { preparePlainJpeg } from './images/small-jpeg.js';
import type { DecodeSpec } from './images/image-host.js';
import { sendError, type DecodeReplies, type DecodeRequests } from './images/worker-pool-host.js';

const data = workerData as { maxPixels?: number; maxFileBytes?: number; lateMs?: number };
const host = new SharpHost(data);
/** Test hook (`WorkerPoolHost`'s `lateMs`): this thread stalls so long before each image of a batch, as a thread starved of a core does. */
const lateMs = data.lateMs ?? 0;
const stall = lateMs > 0 ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
// Ready before the first batch: the folder's opening (listing, probing) runs meanwhile.
void preparePlainJpeg();
/** Decodes in progress at once: libuv's thread pool (4 by default) does sharp's work, more would only queue there. */
const PARALLEL = 4;

parentPort?.on('message', (msg: DecodeRequests) => {
  const n = msg.ids.length;
  const errors: DecodeReplies['errors'] = [];
  const decoded: (Uint8Array | undefined)[] = new Array(n);
  const sizes = msg.op === 'probe' ? new Int32Array(2 * n) : undefined;
  const spec = msg.spec as Omit<DecodeSpec, 'source'>;
  // Rows: each image converted as soon as it is decoded, into the batch's one buffer.
  const pixels = spec ? spec.size[0] * spec.size[1] : 0;
  const rowSize = spec ? pixels * spec.channels : 0;
  const rows = msg.op === 'rows' ? new Float32Array(n * rowSize) : undefined;
  const one = async (k: number) => {
    const file = msg.files[k];
    // A batch's image the training thread took over while waiting for this answer (2 = ours, 1 = its).
    const taken = () => msg.claims !== undefined && Atomics.compareExchange(msg.claims, k, 0, 2) !== 0;
    if (stall && !msg.warm && (msg.claims === undefined || Atomics.load(msg.claims, k) === 0)) Atomics.wait(stall, 0, 0, lateMs);
    if (taken()) return;
    try {
      if (sizes) {
        const s = await host.probe(file);
        sizes[2 * k] = s.height;
        sizes[2 * k + 1] = s.width;
      } else {
        const src = msg.sources as Int32Array;
        const source = src[2 * k] > 0 ? { height: src[2 * k], width: src[2 * k + 1] } : undefined;
        const px = await host.decode(file, { ...spec, source });
        if (rows) pixelsToFloat(px, pixels, spec.channels, rows, k * rowSize);
        if (!rows || msg.keep) decoded[k] = px;
      }
    } catch (e) {
      errors.push([k, sendError(e, file)]);
    }
  };
  let next = 0;
  const lane = async () => {
    while (next < n) await one(next++);
  };
  void Promise.all(Array.from({ length: Math.min(PARALLEL, n) }, lane)).then(() => {
    const { ids } = msg;
    if (sizes) {
      parentPort?.postMessage({ batch: msg.batch, ids, sizes, errors } satisfies DecodeReplies, [ids.buffer as ArrayBuffer, sizes.buffer]);
      return;
    }
    const reply: DecodeReplies = { batch: msg.batch, ids, errors };
    const transfer: ArrayBuffer[] = [ids.buffer as ArrayBuffer];
    if (rows) {
      reply.rows = rows.buffer;
      transfer.push(rows.buffer);
    }
    if (!rows || msg.keep) {
      // Every image's bytes into one buffer, sent as one transfer.
      const lengths = Int32Array.from(decoded, (d) => (d ? d.length : -1));
      const all = new Uint8Array(lengths.reduce((t, l) => t + Math.max(l, 0), 0));
      let at = 0;
      for (const d of decoded) {
        if (!d) continue;
        all.set(d, at);
        at += d.length;
      }
      reply.lengths = lengths;
      reply.pixels = all.buffer;
      transfer.push(lengths.buffer, all.buffer);
    }
    parentPort?.postMessage(reply, transfer);
  });
});
