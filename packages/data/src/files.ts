import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataFormatError, NotFoundError } from '@kiln/core';
import { isGzip, parseIdx, type IdxArray } from './idx.js';

/** Reads an IDX file from disk, gzip-compressed or raw (decided by content, not the name). */
export function readIdxFile(file: string): IdxArray {
  if (!existsSync(file)) throw new NotFoundError(`IDX file '${file}'`, [file]);
  let bytes: Uint8Array = readFileSync(file);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new DataFormatError(file, 'corrupt gzip stream', { offset: 0, found: e instanceof Error ? e.message : String(e) });
    }
  }
  return parseIdx(bytes, file);
}
