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
  const buf = Uint8Array.prototype.slice.call(bytes).buffer;
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    default:
      return new Uint8Array(buf);
  }
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

/** Parses a safetensors file; every inconsistency raises `DataFormatError` naming the byte offset. */
export function decodeSafetensors(bytes: Uint8Array, file = '<safetensors>'): Safetensors {
  if (bytes.length < 8) throw new DataFormatError(file, 'file too short for a safetensors header', { offset: 0, expected: '>= 8 bytes', found: `${bytes.length}` });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen > bytes.length - 8) {
    throw new DataFormatError(file, 'safetensors header length runs past the end of the file', { offset: 0, expected: `<= ${bytes.length - 8}`, found: `${hlen}` });
  }
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new DataFormatError(file, 'safetensors header is not valid JSON', { offset: 8, found: e instanceof Error ? e.message : String(e) });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new DataFormatError(file, 'safetensors header is not a JSON object', { offset: 8 });
  }
  const base = 8 + hlen;
  const tensors: Record<string, HostTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const dtype = SAFETENSORS_DTYPES[entry?.dtype];
    if (!dtype) throw new DataFormatError(file, `tensor '${name}' has an unsupported dtype`, { offset: 8, expected: Object.keys(SAFETENSORS_DTYPES).join('|'), found: String(entry?.dtype) });
    const shape = entry.shape;
    const range = entry.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) {
      throw new DataFormatError(file, `tensor '${name}' has an invalid shape`, { offset: 8, found: JSON.stringify(shape) });
    }
    if (!Array.isArray(range) || range.length !== 2 || !(range[0] <= range[1]) || base + range[1] > bytes.length) {
      throw new DataFormatError(file, `tensor '${name}' data range is outside the file`, { offset: base, found: JSON.stringify(range) });
    }
    if (range[1] - range[0] !== numel(shape) * BYTES[dtype]) {
      throw new DataFormatError(file, `tensor '${name}' byte length does not match its shape`, {
        offset: base + range[0],
        expected: `${numel(shape) * BYTES[dtype]} bytes`,
        found: `${range[1] - range[0]}`,
      });
    }
    tensors[name] = { dtype, shape, data: view(dtype, bytes.subarray(base + range[0], base + range[1])) };
  }
  return { tensors, metadata };
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const NPY_DESCR: Record<string, DType> = { '<f4': 'float32', '<i4': 'int32', '|u1': 'uint8', '<u1': 'uint8', '|b1': 'bool', '<f8': 'float64', '<i8': 'int64' };
const DTYPE_TO_NPY: Record<DType, string> = { float32: '<f4', int32: '<i4', uint8: '|u1', bool: '|b1', float64: '<f8', int64: '<i8' };

/** Reads a NumPy `.npy` file (format versions 1–3, little-endian, C order). */
export function decodeNpy(bytes: Uint8Array, file = '<npy>'): HostTensor {
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
    hlen = dv.getUint32(8, true);
    hstart = 12;
  } else {
    throw new DataFormatError(file, 'unsupported .npy version', { offset: 6, expected: '1, 2 or 3', found: String(major) });
  }
  if (hstart + hlen > bytes.length) throw new DataFormatError(file, '.npy header runs past the end of the file', { offset: 8 });
  const header = new TextDecoder().decode(bytes.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new DataFormatError(file, '.npy header is malformed', { offset: hstart, found: header.trim() });
  const dtype = NPY_DESCR[descr];
  if (!dtype) throw new DataFormatError(file, 'unsupported .npy dtype', { offset: hstart, expected: Object.keys(NPY_DESCR).join(', '), found: descr });
  if (fortran === 'True') throw new DataFormatError(file, 'Fortran-ordered .npy arrays are not supported', { offset: hstart, hint: 'save with np.ascontiguousarray(x)' });
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const start = hstart + hlen;
  const need = numel(shape) * BYTES[dtype];
  if (bytes.length - start < need) {
    throw new DataFormatError(file, '.npy data is truncated', { offset: start, expected: `${need} bytes`, found: `${bytes.length - start}` });
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
