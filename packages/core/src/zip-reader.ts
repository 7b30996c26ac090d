import { Inflate } from 'fflate';
import { DataFormatError } from './errors.js';

/**
 * A read-only view of a ZIP archive held in memory, as `torch.save` writes them (PKWARE APPNOTE
 * 6.3: central directory, stored or deflated entries, ZIP64 for large files). Every size and offset
 * the archive declares is checked against the bytes actually there before it is used, so a damaged
 * or hostile archive raises a `DataFormatError` instead of reading out of range or inflating without
 * bound.
 */
/** One file in the archive, as its central directory describes it (sizes already checked). */
export interface ZipEntry {
  /** Path inside the archive, `/`-separated (e.g. `archive/data/0`). */
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  /** Bytes the entry's data takes in the archive; equals `size` for a stored entry. */
  compressedSize: number;
  /** Bytes of the entry once uncompressed. */
  size: number;
  /** Where the entry's (compressed) data starts in the archive. */
  dataOffset: number;
}

/** Caps a {@link ZipArchive} enforces so that a hostile archive cannot exhaust memory. */
export interface ZipLimits {
  /** Most entries accepted. Default 100 000 (a ResNet-152 state dict has ~930). */
  maxEntries?: number;
  /** Most bytes all deflated entries may inflate to, together. Default 1 GiB. */
  maxInflatedBytes?: number;
}

/**
 * An in-memory ZIP archive: its entries by name, and each entry's uncompressed bytes on demand
 * (stored or deflated, ZIP64 included), with every declared size and offset checked first.
 */
export class ZipArchive {
  private readonly byName = new Map<string, ZipEntry>();
  private inflated = 0;
  private readonly maxInflated: number;

  /** Parses the central directory of `bytes`; `file` names the archive in errors. */
  constructor(
    /** The whole archive; stored entries are returned as views into it. */
    readonly bytes: Uint8Array,
    /** The archive's name in error messages. */
    readonly file: string,
    limits: ZipLimits = {},
  ) {
    this.maxInflated = limits.maxInflatedBytes ?? 2 ** 30;
    for (const e of readCentralDirectory(bytes, file, limits.maxEntries ?? 100_000)) {
      if (this.byName.has(e.name)) throw new DataFormatError(file, `zip entry '${e.name}' appears twice`, { offset: e.dataOffset });
      this.byName.set(e.name, e);
    }
  }

  /** Every entry's name, in central-directory order. */
  get names(): string[] {
    return [...this.byName.keys()];
  }

  /** The entry called `name` (an exact path), or `undefined` when the archive has none. */
  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The entry's uncompressed bytes: a view into the archive for stored entries, a new buffer for
   * deflated ones (never more than the size the entry declares, and within the archive's limit).
   */
  read(name: string): Uint8Array {
    const e = this.byName.get(name);
    if (!e) throw new DataFormatError(this.file, `zip entry '${name}' is missing`);
    const raw = this.bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
    if (e.method === 0) return raw;
    this.inflated += e.size;
    if (this.inflated > this.maxInflated) {
      throw new DataFormatError(this.file, `zip entry '${name}' would inflate past the limit`, { offset: e.dataOffset, expected: `<= ${this.maxInflated} bytes in all`, found: `${this.inflated}` });
    }
    return inflateBounded(raw, e, this.file);
  }
}

const u16 = (dv: DataView, at: number) => dv.getUint16(at, true);
const u32 = (dv: DataView, at: number) => dv.getUint32(at, true);
function u64(dv: DataView, at: number, file: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DataFormatError(file, 'zip64 field is too large', { offset: at, found: String(v) });
  return Number(v);
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function readCentralDirectory(bytes: Uint8Array, file: string, maxEntries: number): ZipEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  // The end-of-central-directory record is the last 22 bytes plus a comment of at most 65535.
  let eocd = -1;
  for (let p = n - 22; p >= Math.max(0, n - 22 - 0xffff); p--) {
    if (u32(dv, p) === EOCD && p + 22 + u16(dv, p + 20) === n) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new DataFormatError(file, 'not a zip archive (no end-of-central-directory record)', { expected: 'a torch.save file (zip)' });
  let count = u16(dv, eocd + 10);
  let cdSize = u32(dv, eocd + 12);
  let cdOffset = u32(dv, eocd + 16);
  if (u16(dv, eocd + 4) !== 0 || u16(dv, eocd + 6) !== 0) throw new DataFormatError(file, 'multi-disk zip archives are not supported', { offset: eocd });
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(dv, loc) !== EOCD64_LOCATOR) throw new DataFormatError(file, 'zip64 end-of-central-directory locator is missing', { offset: Math.max(loc, 0) });
    const rec = u64(dv, loc + 8, file);
    if (rec + 56 > loc || u32(dv, rec) !== EOCD64) throw new DataFormatError(file, 'zip64 end-of-central-directory record is missing', { offset: rec });
    count = u64(dv, rec + 32, file);
    cdSize = u64(dv, rec + 40, file);
    cdOffset = u64(dv, rec + 48, file);
  }
  if (count > maxEntries) throw new DataFormatError(file, 'zip archive has too many entries', { offset: eocd, expected: `<= ${maxEntries}`, found: `${count}` });
  if (cdOffset + cdSize > eocd) throw new DataFormatError(file, 'zip central directory lies outside the file', { offset: eocd, found: `offset ${cdOffset}, size ${cdSize}` });
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  const end = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > end || u32(dv, p) !== CENTRAL) throw new DataFormatError(file, `zip central directory entry ${i} is damaged`, { offset: p });
    const flags = u16(dv, p + 8);
    const method = u16(dv, p + 10);
    let compressedSize = u32(dv, p + 20);
    let size = u32(dv, p + 24);
    const nameLen = u16(dv, p + 28);
    const extraLen = u16(dv, p + 30);
    const commentLen = u16(dv, p + 32);
    let local = u32(dv, p + 42);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > end) throw new DataFormatError(file, `zip central directory entry ${i} runs past the directory`, { offset: p });
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information: the 64-bit values of the fields set to 0xFFFFFFFF, in this order.
    if (size === 0xffffffff || compressedSize === 0xffffffff || local === 0xffffffff) {
      let q = p + 46 + nameLen;
      const qEnd = q + extraLen;
      let found = false;
      while (q + 4 <= qEnd) {
        const id = u16(dv, q);
        const len = u16(dv, q + 2);
        if (q + 4 + len > qEnd) break;
        if (id === 0x0001) {
          let f = q + 4;
          const take = () => {
            if (f + 8 > q + 4 + len) throw new DataFormatError(file, `zip64 extra field of '${name}' is too short`, { offset: f });
            const v = u64(dv, f, file);
            f += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (local === 0xffffffff) local = take();
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) throw new DataFormatError(file, `zip entry '${name}' lacks its zip64 sizes`, { offset: p });
    }
    if (flags & 1) throw new DataFormatError(file, `zip entry '${name}' is encrypted`, { offset: p });
    if (method !== 0 && method !== 8) throw new DataFormatError(file, `zip entry '${name}' uses an unsupported compression method`, { offset: p, expected: '0 (stored) or 8 (deflate)', found: String(method) });
    if (method === 0 && size !== compressedSize) throw new DataFormatError(file, `stored zip entry '${name}' declares two different sizes`, { offset: p, found: `${compressedSize} and ${size}` });
    // Deflate cannot expand data by more than ~1032:1; a declared size beyond that is a zip bomb or damage.
    if (method === 8 && size > compressedSize * 1032 + 1024) throw new DataFormatError(file, `zip entry '${name}' declares an impossible compression ratio`, { offset: p, found: `${compressedSize} → ${size} bytes` });
    if (local + 30 > cdOffset || u32(dv, local) !== LOCAL) throw new DataFormatError(file, `zip local header of '${name}' is missing`, { offset: local });
    const dataOffset = local + 30 + u16(dv, local + 26) + u16(dv, local + 28);
    if (dataOffset + compressedSize > cdOffset) throw new DataFormatError(file, `zip entry '${name}' runs past its data area`, { offset: dataOffset, expected: `<= ${cdOffset - dataOffset} bytes`, found: `${compressedSize}` });
    entries.push({ name, method, compressedSize, size, dataOffset });
    p = next;
  }
  return entries;
}

/** Inflates `raw` into at most `e.size` bytes, failing as soon as the stream would produce more. */
function inflateBounded(raw: Uint8Array, e: ZipEntry, file: string): Uint8Array {
  const out = new Uint8Array(e.size);
  let at = 0;
  let overflow = false;
  let done = false;
  const inflater = new Inflate((chunk, final) => {
    if (at + chunk.length > out.length) {
      overflow = true;
      throw new Error('overflow');
    }
    out.set(chunk, at);
    at += chunk.length;
    if (final) done = true;
  });
  try {
    inflater.push(raw, true);
  } catch (err) {
    if (overflow) throw new DataFormatError(file, `zip entry '${e.name}' inflates to more than its declared size`, { offset: e.dataOffset, expected: `${e.size} bytes` });
    throw new DataFormatError(file, `zip entry '${e.name}' is not valid deflate data`, { offset: e.dataOffset, found: err instanceof Error ? err.message : String(err) });
  }
  if (!done || at !== e.size) throw new DataFormatError(file, `zip entry '${e.name}' inflates to ${at} bytes`, { offset: e.dataOffset, expected: `${e.size} bytes` });
  return out;
}
