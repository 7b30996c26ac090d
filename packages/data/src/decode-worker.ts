/**
 * Entry point of an image-decoding worker thread (built as its own file, dist/decode-worker.cjs,
 * started by images/worker-pool-host.ts). Each message is a list of probes and decodes for
 * `SharpHost`, answered with one message once all are done: pixels transferred, not copied; errors
 * as their parts, which the main thread rebuilds into the same typed errors.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharpHost } from './images/sharp-host.js';
import { sendError, type DecodeReply, type DecodeRequest } from './images/worker-pool-host.js';

const host = new SharpHost(workerData as { maxPixels?: number; maxFileBytes?: number });
/** Decodes in progress at once: libuv's thread pool (4 by default) does sharp's work, more would only queue there. */
const PARALLEL = 4;

async function answer(req: DecodeRequest): Promise<DecodeReply> {
  try {
    if (req.op === 'probe') return { id: req.id, size: await host.probe(req.file) };
    return { id: req.id, data: await host.decode(req.file, req.spec as NonNullable<DecodeRequest['spec']>) };
  } catch (e) {
    return { id: req.id, error: sendError(e, req.file) };
  }
}

parentPort?.on('message', (batch: DecodeRequest[]) => {
  const replies: DecodeReply[] = new Array(batch.length);
  let next = 0;
  const lane = async () => {
    while (next < batch.length) {
      const k = next++;
      replies[k] = await answer(batch[k]);
    }
  };
  void Promise.all(Array.from({ length: Math.min(PARALLEL, batch.length) }, lane)).then(() => {
    const buffers = replies.flatMap((r) => (r.data ? [r.data.buffer as ArrayBuffer] : []));
    parentPort?.postMessage(replies, buffers);
  });
});
