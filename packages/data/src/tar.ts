import { DataFormatError } from '@kiln/core';

/** One regular file of a tar archive. */
export interface TarEntry {
  /** Path inside the archive (ustar prefix + name, or a GNU/PAX long name). */
  name: string;
  /** The file's contents: a view into the archive's bytes, not a copy. */
  data: Uint8Array;
}

const BLOCK = 512;
const decoder = new TextDecoder('utf-8');

function field(bytes: Uint8Array, at: number, len: number): string {
  const raw = bytes.subarray(at, at + len);
  const end = raw.indexOf(0);
  return decoder.decode(end >= 0 ? raw.subarray(0, end) : raw);
}

function octal(bytes: Uint8Array, at: number, len: number, file: string): number {
  const text = field(bytes, at, len).trim();
  const n = text === '' ? 0 : parseInt(text, 8);
  if (!Number.isFinite(n) || n < 0) throw new DataFormatError(file, 'tar header has a bad number field', { offset: at, expected: 'octal digits', found: JSON.stringify(text) });
  return n;
}

/**
 * The regular files of an (uncompressed) POSIX tar archive, in archive order. Handles ustar name
 * prefixes, GNU long names ('L') and PAX `path` records, which is what `tar czf` writes; other
 * entry types (directories, links) are skipped. A file whose name is absolute or has a `..`
 * segment fails with a DataFormatError. Used to unpack dataset archives such as CIFAR's.
 */
export function readTar(bytes: Uint8Array, file: string): TarEntry[] {
  const out: TarEntry[] = [];
  let at = 0;
  let longName: string | null = null;
  while (at + BLOCK <= bytes.length) {
    const header = bytes.subarray(at, at + BLOCK);
    // Two zero blocks end the archive; one is enough to stop.
    if (header.every((b) => b === 0)) break;
    const size = octal(bytes, at + 124, 12, file);
    const type = String.fromCharCode(header[156] || 0x30);
    const magic = field(bytes, at + 257, 6);
    const prefix = magic.startsWith('ustar') ? field(bytes, at + 345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${field(bytes, at, 100)}` : field(bytes, at, 100));
    const start = at + BLOCK;
    if (start + size > bytes.length) {
      throw new DataFormatError(file, `tar archive truncated inside '${name}'`, { offset: start, expected: `${size} bytes of data`, found: `${bytes.length - start}` });
    }
    const data = bytes.subarray(start, start + size);
    longName = null;
    if (type === 'L') longName = field(data, 0, data.length);
    else if (type === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(decoder.decode(data));
      if (path) longName = path[1];
    } else if (type === '0' || type === '7') {
      // A name that climbs out ('..') or starts at the root would land outside wherever the caller
      // unpacks the archive: a hostile archive's trick, refused rather than passed on.
      if (name.startsWith('/') || name.split('/').includes('..')) {
        throw new DataFormatError(file, `tar entry '${name}' points outside the archive`, { offset: at, expected: 'a relative path without .. segments', found: name });
      }
      out.push({ name, data });
    }
    at = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
