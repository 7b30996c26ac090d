import { gunzipSync } from 'node:zlib';
import { DataFormatError } from '@kiln/core';
import { readFileChecked } from '@kiln/core/node';
import { isGzip, parseIdx, type IdxArray } from './idx.js';

/** Largest IDX file accepted after decompression by default (Fashion-MNIST's training images: 47 MB). */
export const DEFAULT_MAX_IDX_BYTES = 1 << 30;

/** Options of {@link readIdxFile}. */
export interface ReadIdxOptions {
  /** Refuse files (compressed or not) that hold more than this many bytes (default 1 GiB). */
  maxBytes?: number;
}

/**
 * Reads an IDX file from disk, gzip-compressed or raw (decided by content, not the name). Special
 * files are refused and decompression stops at `maxBytes`, so a small gzip bomb cannot fill memory.
 */
export function readIdxFile(file: string, options: ReadIdxOptions = {}): IdxArray {
  const max = options.maxBytes ?? DEFAULT_MAX_IDX_BYTES;
  let bytes: Uint8Array = readFileChecked(file, { what: 'IDX file', maxBytes: max });
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: max });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new DataFormatError(file, 'gzip stream decompresses to more than the limit', { expected: `at most ${max} bytes`, hint: 'pass a larger maxBytes if the file is genuine' });
      throw new DataFormatError(file, 'corrupt gzip stream', { offset: 0, found: e instanceof Error ? e.message : String(e) });
    }
  }
  // The bytes were read (and decompressed) here and go nowhere else: the values can stay in them.
  return parseIdx(bytes, file, { view: true });
}
