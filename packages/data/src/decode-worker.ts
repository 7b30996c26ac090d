/**
 * Entry point of an image-decoding worker thread (built as its own file, dist/decode-worker.cjs,
 * started by images/worker-pool-host.ts). Each message is a list of probes and decodes for
 * `SharpHost`, answered with one message once all are done: all images' 8-bit pixels in one
 * transferred buffer; errors as their parts, which the main thread rebuilds into the same typed errors.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharpHost } from './images/sharp-host.js';
import type { DecodeSpec } from './images/image-host.js';
import { sendError, type DecodeReplies, type DecodeRequests } from './images/worker-pool-host.js';

const host = new SharpHost(workerData as { maxPixels?: number; maxFileBytes?: number });
/** Decodes in progress at once: libuv's thread pool (4 by default) does sharp's work, more would only queue there. */
const PARALLEL = 4;

parentPort?.on('message', (msg: DecodeRequests) => {
  const n = msg.ids.length;
  const errors: DecodeReplies['errors'] = [];
  const decoded: (Uint8Array | undefined)[] = new Array(n);
  const sizes = msg.op === 'probe' ? new Int32Array(2 * n) : undefined;
  const one = async (k: number) => {
    const file = msg.files[k];
    try {
      if (sizes) {
        const s = await host.probe(file);
        sizes[2 * k] = s.height;
        sizes[2 * k + 1] = s.width;
      } else {
        const src = msg.sources as Int32Array;
        const source = src[2 * k] > 0 ? { height: src[2 * k], width: src[2 * k + 1] } : undefined;
        decoded[k] = await host.decode(file, { ...(msg.spec as Omit<DecodeSpec, 'source'>), source });
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
    // Every image's bytes into one buffer, sent as one transfer.
    const lengths = Int32Array.from(decoded, (d) => (d ? d.length : -1));
    const pixels = new Uint8Array(lengths.reduce((t, l) => t + Math.max(l, 0), 0));
    let at = 0;
    for (const d of decoded) {
      if (!d) continue;
      pixels.set(d, at);
      at += d.length;
    }
    parentPort?.postMessage({ batch: msg.batch, ids, lengths, pixels: pixels.buffer, errors } satisfies DecodeReplies, [ids.buffer as ArrayBuffer, lengths.buffer, pixels.buffer]);
  });
});
