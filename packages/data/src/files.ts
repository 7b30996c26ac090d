import { promisify } from 'node:util';
import { gunzip, gunzipSync, type ZlibOptions } from 'node:zlib';
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

const gunzipAsync = promisify<Uint8Array, ZlibOptions, Uint8Array>(gunzip);

/**
 * Options for decompressing `bytes` (a gzip file) to at most `max` bytes. The output buffer is sized
 * from the size the gzip trailer records (plus one byte, so that zlib does not take a full buffer as
 * a sign of more to come): the whole file then decompresses into one buffer, which zlib returns as
 * it is instead of concatenating chunks into a copy. The size is only a hint (zlib itself rejects a
 * member whose trailer disagrees with its data; a file of several gzip members records only the
 * last one's): too small costs a concatenation, never a wrong result, and it is capped so that a
 * small file cannot make the reader reserve much memory.
 */
function gunzipOptions(bytes: Uint8Array, max: number): ZlibOptions {
  const n = bytes.length;
  const recorded = n >= 18 ? (bytes[n - 4] | (bytes[n - 3] << 8) | (bytes[n - 2] << 16) | (bytes[n - 1] << 24)) >>> 0 : 0;
  return { maxOutputLength: max, chunkSize: Math.max(64 * 1024, Math.min(recorded + 1, max, 256 * 2 ** 20)) };
}

/** The error a failed decompression of `file` stands for. */
function gunzipError(e: unknown, file: string, max: number): DataFormatError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ERR_BUFFER_TOO_LARGE') return new DataFormatError(file, 'gzip stream decompresses to more than the limit', { expected: `at most ${max} bytes`, hint: 'pass a larger maxBytes if the file is genuine' });
  return new DataFormatError(file, 'corrupt gzip stream', { offset: 0, found: e instanceof Error ? e.message : String(e) });
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
      bytes = gunzipSync(bytes, gunzipOptions(bytes, max));
    } catch (e) {
      throw gunzipError(e, file, max);
    }
  }
  // The bytes were read (and decompressed) here and go nowhere else: the values can stay in them.
  return parseIdx(bytes, file, { view: true });
}

/**
 * {@link readIdxFile} with the decompression on a thread of Node's pool: reading several files at
 * once (a dataset's training and test files) decompresses them in parallel, and the calling thread
 * is free meanwhile. Same checks, limits and errors.
 */
export async function readIdxFileAsync(file: string, options: ReadIdxOptions = {}): Promise<IdxArray> {
  const max = options.maxBytes ?? DEFAULT_MAX_IDX_BYTES;
  let bytes: Uint8Array = readFileChecked(file, { what: 'IDX file', maxBytes: max });
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes, gunzipOptions(bytes, max));
    } catch (e) {
      throw gunzipError(e, file, max);
    }
  }
  return parseIdx(bytes, file, { view: true });
}
