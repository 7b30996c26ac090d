/**
 * Entry point of an image-decoding worker thread (built as its own file, dist/decode-worker.cjs).
 * It reads and decodes one file per message and answers with the pixels (transferred, not copied)
 * or with the fields of the DataFormatError it hit, which the main thread rebuilds.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { DataFormatError, KilnError } from '@kiln/core';
import { decodeImage } from './image-decode.js';
import type { DecodeReply, DecodeRequest } from './image-folder.js';

parentPort?.on('message', (req: DecodeRequest) => {
  let reply: DecodeReply;
  try {
    const img = decodeImage(readFileSync(req.file), req.file, req.channels);
    reply = { id: req.id, image: img };
    parentPort?.postMessage(reply, [img.data.buffer as ArrayBuffer]);
    return;
  } catch (e) {
    const problem = e instanceof KilnError ? e.message.split('\n')[0] : e instanceof Error ? e.message : String(e);
    reply = { id: req.id, error: { problem, offset: e instanceof DataFormatError ? e.offset : undefined, found: e instanceof KilnError ? e.found : undefined, expected: e instanceof KilnError ? e.expected : undefined } };
  }
  parentPort?.postMessage(reply);
});
