import { typedArrayOf } from './typed-arrays.js';
import { DataFormatError } from './errors.js';

/**
 * Tensor containers Kiln reads and writes without touching the engine: plain typed arrays with a
 * shape, so checkpoints and weight files can be assembled, inspected or streamed to disk without
 * creating tensors.
 */
export type DType = 'float32' | 'int32' | 'uint8' | 'bool' | 'float64' | 'int64';
/** The typed arrays host tensors hold, one per {@link DType}. */
export type TypedArrayOf = Float32Array | Int32Array | Uint8Array | Float64Array | BigInt64Array;

/** A tensor's values in host memory, as tensor files store them. */
export interface HostTensor {
  /** Element type. */
  dtype: DType;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Values in row-major order. */
  data: TypedArrayOf;
}

const SAFETENSORS_DTYPES: Record<string, DType> = { F32: 'float32', I32: 'int32', U8: 'uint8', BOOL: 'bool', F64: 'float64', I64: 'int64' };
const DTYPE_TO_SAFETENSORS: Record<DType, string> = { float32: 'F32', int32: 'I32', uint8: 'U8', bool: 'BOOL', float64: 'F64', int64: 'I64' };
const BYTES: Record<DType, number> = { float32: 4, int32: 4, uint8: 1, bool: 1, float64: 8, int64: 8 };

function view(dtype: DType, bytes: Uint8Array): TypedArrayOf {
  // Copy into an aligned buffer of its own: offsets inside a file are not guaranteed to be aligned,
  // and a Node Buffer's `slice` is a view into a shared pool, so use Uint8Array's copying slice.
  return typedArrayOf(dtype, Uint8Array.prototype.slice.call(bytes).buffer);
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Writes the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length, a JSON header mapping names to dtype/shape/byte ranges, then the raw data.
 * Tensors are laid out in key order; `metadata` values must be strings, as the format requires.
 */
export function encodeSafetensors(tensors: Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const n = t.data.byteLength;
    if (n !== numel(t.shape) * BYTES[t.dtype]) {
      throw new DataFormatError(name, `tensor '${name}' has ${n} bytes of data but shape [${t.shape}] of ${t.dtype} needs ${numel(t.shape) * BYTES[t.dtype]}`);
    }
    header[name] = { dtype: DTYPE_TO_SAFETENSORS[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (TextEncoder, not Buffer: this also
  // runs in browsers).
  const utf8Length = new TextEncoder().encode(json).length;
  json += ' '.repeat((8 - ((8 + utf8Length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
    p += d.byteLength;
  }
  return out;
}

/** A decoded safetensors file. */
export interface Safetensors {
  /** Tensors by name. */
  tensors: Record<string, HostTensor>;
  /** The file's `__metadata__` strings (empty when absent). */
  metadata: Record<string, string>;
}

/** Largest safetensors header accepted (the format's reference reader uses the same 100 MB bound). */
const MAX_SAFETENSORS_HEADER = 100_000_000;

/** Names that would reach an object's prototype chain if used as keys of a plain object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** A JSON value that must be a non-negative safe integer; returns it or throws naming `what`. */
function safeCount(v: unknown, file: string, what: string, offset: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new DataFormatError(file, `${what} is not a non-negative integer`, { offset, found: JSON.stringify(v) });
  return v;
}

/**
 * Parses a safetensors file. Everything the header claims is checked before any tensor is
 * allocated: offsets are non-negative integers inside the file, the tensors tile the data section
 * exactly (no overlaps, no gaps, as the format requires), byte lengths match shapes, names cannot
 * reach object prototypes, and metadata is a string-to-string map. Every problem raises
 * `DataFormatError` naming the file and byte offset.
 */
export function decodeSafetensors(bytes: Uint8Array, file = '<safetensors>'): Safetensors {
  if (bytes.length < 8) throw new DataFormatError(file, 'file too short for a safetensors header', { offset: 0, expected: '>= 8 bytes', found: `${bytes.length}` });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen64 = dv.getBigUint64(0, true);
  if (hlen64 > BigInt(Math.min(bytes.length - 8, MAX_SAFETENSORS_HEADER))) {
    throw new DataFormatError(file, 'safetensors header length runs past the end of the file (or the 100 MB limit)', { offset: 0, expected: `<= ${Math.min(bytes.length - 8, MAX_SAFETENSORS_HEADER)}`, found: `${hlen64}` });
  }
  const hlen = Number(hlen64);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new DataFormatError(file, 'safetensors header is not valid JSON', { offset: 8, found: e instanceof Error ? e.message : String(e) });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new DataFormatError(file, 'safetensors header is not a JSON object', { offset: 8 });
  }
  const base = 8 + hlen;
  const dataLength = bytes.length - base;
  const metadata: Record<string, string> = Object.create(null);
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (FORBIDDEN_KEYS.has(name)) throw new DataFormatError(file, `safetensors header uses the reserved name '${name}'`, { offset: 8, expected: 'tensor names other than __proto__, constructor, prototype' });
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new DataFormatError(file, 'safetensors __metadata__ is not an object', { offset: 8, found: JSON.stringify(entry)?.slice(0, 80) });
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (FORBIDDEN_KEYS.has(k)) throw new DataFormatError(file, `safetensors metadata uses the reserved key '${k}'`, { offset: 8 });
        if (typeof v !== 'string') throw new DataFormatError(file, `safetensors metadata '${k}' is not a string`, { offset: 8, expected: 'string values (the format allows no others)', found: typeof v });
        metadata[k] = v;
      }
      continue;
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new DataFormatError(file, `tensor '${name}' has no dtype/shape/data_offsets object`, { offset: 8 });
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof e.dtype === 'string' && Object.hasOwn(SAFETENSORS_DTYPES, e.dtype) ? SAFETENSORS_DTYPES[e.dtype] : undefined;
    if (!dtype) throw new DataFormatError(file, `tensor '${name}' has an unsupported dtype`, { offset: 8, expected: Object.keys(SAFETENSORS_DTYPES).join('|'), found: String(e.dtype) });
    if (!Array.isArray(e.shape)) throw new DataFormatError(file, `tensor '${name}' has an invalid shape`, { offset: 8, found: JSON.stringify(e.shape) });
    const shape = e.shape.map((d, i) => safeCount(d, file, `tensor '${name}' dimension ${i}`, 8));
    const range = e.data_offsets;
    if (!Array.isArray(range) || range.length !== 2) throw new DataFormatError(file, `tensor '${name}' data_offsets is not a pair`, { offset: 8, found: JSON.stringify(range) });
    const begin = safeCount(range[0], file, `tensor '${name}' start offset`, 8);
    const end = safeCount(range[1], file, `tensor '${name}' end offset`, 8);
    if (begin > end || end > dataLength) {
      throw new DataFormatError(file, `tensor '${name}' data range is outside the file`, { offset: base, expected: `0 <= start <= end <= ${dataLength}`, found: JSON.stringify(range) });
    }
    // The element count must be exact before it is compared, so a huge shape cannot round into a match.
    const elements = shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(elements) || elements * BYTES[dtype] !== end - begin) {
      throw new DataFormatError(file, `tensor '${name}' byte length does not match its shape`, {
        offset: base + begin,
        expected: `${Number.isSafeInteger(elements) ? elements * BYTES[dtype] : 'a representable number of'} bytes`,
        found: `${end - begin}`,
      });
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  // The data section is tiled exactly by the tensors: sorted by start, each begins where the last ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of sorted) {
    if (t.begin !== at) {
      throw new DataFormatError(file, t.begin < at ? `tensor '${t.name}' overlaps the previous tensor's bytes` : `a gap of unused bytes precedes tensor '${t.name}'`, { offset: base + t.begin, expected: `start offset ${at}`, found: `${t.begin}` });
    }
    at = t.end;
  }
  if (at !== dataLength) throw new DataFormatError(file, 'bytes after the last tensor are not described by the header', { offset: base + at, expected: 'no trailing bytes', found: `${dataLength - at} bytes` });
  const tensors: Record<string, HostTensor> = Object.create(null);
  for (const t of entries) tensors[t.name] = { dtype: t.dtype, shape: t.shape, data: view(t.dtype, bytes.subarray(base + t.begin, base + t.end)) };
  return { tensors, metadata };
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const NPY_DESCR: Record<string, DType> = { '<f4': 'float32', '<i4': 'int32', '|u1': 'uint8', '<u1': 'uint8', '|b1': 'bool', '<f8': 'float64', '<i8': 'int64' };
const DTYPE_TO_NPY: Record<DType, string> = { float32: '<f4', int32: '<i4', uint8: '|u1', bool: '|b1', float64: '<f8', int64: '<i8' };

/** Largest `.npy` header accepted (NumPy itself refuses headers over 10 000 bytes by default). */
const MAX_NPY_HEADER = 1 << 16;

/**
 * Reads a NumPy `.npy` file (format versions 1–3, little-endian, C order). The header is checked
 * field by field and the data length against the shape before anything is allocated.
 */
export function decodeNpy(bytes: Uint8Array, file = '<npy>'): HostTensor {
  if (bytes.length < 10) throw new DataFormatError(file, 'not a .npy file (too short)', { offset: 0, expected: 'at least 10 bytes', found: `${bytes.length}` });
  for (let i = 0; i < NPY_MAGIC.length; i++) {
    if (bytes[i] !== NPY_MAGIC[i]) throw new DataFormatError(file, 'not a .npy file (bad magic)', { offset: i, expected: '\\x93NUMPY' });
  }
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new DataFormatError(file, '.npy header runs past the end of the file', { offset: 8 });
    hlen = dv.getUint32(8, true);
    hstart = 12;
  } else {
    throw new DataFormatError(file, 'unsupported .npy version', { offset: 6, expected: '1, 2 or 3', found: String(major) });
  }
  if (hlen > MAX_NPY_HEADER || hstart + hlen > bytes.length) throw new DataFormatError(file, '.npy header runs past the end of the file', { offset: 8, expected: `<= ${Math.min(MAX_NPY_HEADER, bytes.length - hstart)} bytes`, found: `${hlen}` });
  const header = new TextDecoder().decode(bytes.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new DataFormatError(file, '.npy header is malformed', { offset: hstart, found: header.trim().slice(0, 200) });
  const dtype = Object.hasOwn(NPY_DESCR, descr) ? NPY_DESCR[descr] : undefined;
  if (!dtype) throw new DataFormatError(file, 'unsupported .npy dtype', { offset: hstart, expected: Object.keys(NPY_DESCR).join(', '), found: descr });
  if (fortran === 'True') throw new DataFormatError(file, 'Fortran-ordered .npy arrays are not supported', { offset: hstart, hint: 'save with np.ascontiguousarray(x)' });
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const shape = dims.map((d) => {
    const n = /^\d+L?$/.test(d) ? Number(d.replace('L', '')) : NaN;
    if (!Number.isSafeInteger(n)) throw new DataFormatError(file, '.npy shape has a dimension that is not a non-negative integer', { offset: hstart, found: `(${shapeText})` });
    return n;
  });
  const start = hstart + hlen;
  const elements = numel(shape);
  const need = elements * BYTES[dtype];
  if (!Number.isSafeInteger(need) || bytes.length - start < need) {
    throw new DataFormatError(file, '.npy data is truncated', { offset: start, expected: `${Number.isSafeInteger(need) ? need : 'a representable number of'} bytes`, found: `${bytes.length - start}` });
  }
  return { dtype, shape, data: view(dtype, bytes.subarray(start, start + need)) };
}

/** Writes a NumPy `.npy` file (format 1.0). */
export function encodeNpy(t: HostTensor): Uint8Array {
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${DTYPE_TO_NPY[t.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Total header (magic + version + length + text + newline) is a multiple of 64 bytes.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + t.data.byteLength);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 10 + header.length);
  return out;
}
