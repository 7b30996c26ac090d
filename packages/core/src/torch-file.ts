import { DataFormatError } from './errors.js';
import { PickleGlobal, UnsafePickleError, unpickle, unpickleFirst, type PickleKey, type PickleValue, type UnpickleOptions } from './pickle.js';
import type { DType, HostTensor } from './tensor-files.js';
import { typedArrayOf } from './typed-arrays.js';
import { ZipArchive, type ZipLimits } from './zip-reader.js';

/**
 * Reads the files `torch.save` writes (PyTorch ≥ 1.6: a zip archive holding `data.pkl`, the pickled
 * object, and one raw little-endian entry per storage under `data/`; before 1.6, a stream of
 * pickles followed by the storages) without Python and without running any of the pickle's code:
 * the pickle goes through Kiln's restricted unpickler, which knows only the handful of globals a
 * state dict uses.
 */
export interface TorchFile {
  /**
   * Every tensor in the file by its path through the pickled dicts and lists, joined with dots:
   * `conv1.weight` for a bare state dict, `state_dict.conv1.weight` for a checkpoint that wraps one.
   */
  tensors: Record<string, HostTensor>;
  /** Conversions made on the way (float64/float16/bfloat16 → float32, …), one line each. */
  notes: string[];
}

/** Limits for {@link decodeTorchFile}: the zip limits for the archive format, plus nesting depth. */
export interface TorchFileOptions extends ZipLimits {
  /** Most nested dicts/lists accepted. Default 64. */
  maxDepth?: number;
}

interface StorageType {
  itemBytes: number;
  /** Kiln's dtype for tensors viewing this storage. */
  dtype: DType;
  read(dv: DataView, byteOffset: number): number | bigint;
  /** Set when the values change type on the way (for `notes`). */
  convertedFrom?: string;
}

const f16 = (dv: DataView, at: number) => {
  const h = dv.getUint16(at, true);
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
};
const scratch = new DataView(new ArrayBuffer(4));
const bf16 = (dv: DataView, at: number) => {
  scratch.setUint32(0, dv.getUint16(at, true) << 16, true);
  return scratch.getFloat32(0, true);
};

/** torch's legacy storage classes, which name a storage's element type in the pickle. */
const STORAGES: Record<string, StorageType> = {
  FloatStorage: { itemBytes: 4, dtype: 'float32', read: (dv, at) => dv.getFloat32(at, true) },
  DoubleStorage: { itemBytes: 8, dtype: 'float32', read: (dv, at) => dv.getFloat64(at, true), convertedFrom: 'float64' },
  HalfStorage: { itemBytes: 2, dtype: 'float32', read: f16, convertedFrom: 'float16' },
  BFloat16Storage: { itemBytes: 2, dtype: 'float32', read: bf16, convertedFrom: 'bfloat16' },
  LongStorage: { itemBytes: 8, dtype: 'int64', read: (dv, at) => dv.getBigInt64(at, true) },
  IntStorage: { itemBytes: 4, dtype: 'int32', read: (dv, at) => dv.getInt32(at, true) },
  ShortStorage: { itemBytes: 2, dtype: 'int32', read: (dv, at) => dv.getInt16(at, true), convertedFrom: 'int16' },
  CharStorage: { itemBytes: 1, dtype: 'int32', read: (dv, at) => dv.getInt8(at), convertedFrom: 'int8' },
  ByteStorage: { itemBytes: 1, dtype: 'uint8', read: (dv, at) => dv.getUint8(at) },
  BoolStorage: { itemBytes: 1, dtype: 'bool', read: (dv, at) => (dv.getUint8(at) ? 1 : 0) },
};

/** A storage the pickle referred to by persistent id: its bytes in the archive and element type. */
class StorageRef {
  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly bytes: Uint8Array,
    readonly numel: number,
  ) {}
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** The first bytes of a pre-1.6 `torch.save` file: PROTO 2, then LONG1 of torch's magic number. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const startsWith = (bytes: Uint8Array, magic: readonly number[]) => bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);

/** Whether `bytes` look like a `torch.save` file (zip format, or the legacy pre-1.6 pickle stream). */
export function isTorchFile(bytes: Uint8Array): boolean {
  return startsWith(bytes, ZIP_MAGIC) || startsWith(bytes, LEGACY_MAGIC);
}

const isInt = (v: PickleValue): v is number => typeof v === 'number' && Number.isInteger(v);
const isIntTuple = (v: PickleValue): v is number[] => Array.isArray(v) && v.every((d) => isInt(d) && d >= 0);

/**
 * Decodes a `torch.save` file (a state dict, or a checkpoint dict that holds one) into host tensors:
 * the zip format of PyTorch ≥ 1.6, and the legacy stream of pickles before it. Throws
 * `UnsafePickleError` when the pickle asks for anything but what a state dict holds, and
 * `DataFormatError` (naming the file and byte offset) for any damage; no other error escapes and no
 * allocation exceeds what the file's own bytes account for.
 */
export function decodeTorchFile(bytes: Uint8Array, file = '<torch file>', options: TorchFileOptions = {}): TorchFile {
  if (startsWith(bytes, LEGACY_MAGIC)) return decodeLegacy(bytes, file, options);
  if (!startsWith(bytes, ZIP_MAGIC)) throw new DataFormatError(file, 'not a torch.save file', { offset: 0, expected: "a zip archive ('PK\\x03\\x04') or torch's legacy pickle stream" });
  const zip = new ZipArchive(bytes, file, options);
  const pkl = zip.names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1) throw new DataFormatError(file, 'torch.save archive must hold exactly one <name>/data.pkl', { found: pkl.length ? pkl.join(', ') : 'none' });
  const prefix = pkl[0].slice(0, -'data.pkl'.length);
  const order = zip.entry(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(zip.read(`${prefix}byteorder`).subarray(0, 16));
    if (text !== 'little') throw new DataFormatError(file, 'tensor data is not little-endian', { offset: order.dataOffset, expected: 'little', found: text, hint: 'save the file on a little-endian machine' });
  }
  const storage: StorageLookup = (key, at) => {
    const name = `${prefix}data/${key}`;
    const entry = zip.entry(name);
    if (!entry) throw new DataFormatError(file, `storage '${key}' is missing from the archive`, { offset: at, expected: `an entry ${name}` });
    return { bytes: zip.read(name), offset: entry.dataOffset };
  };
  const entry = zip.entry(pkl[0])!;
  return decodeStateDict(zip.read(pkl[0]), entry.method === 0 ? entry.dataOffset : 0, storage, file, bytes.length, options);
}

/** Finds a storage's bytes (and where they start in the file, for errors) by its key. */
type StorageLookup = (key: string, at: number) => { bytes: Uint8Array; offset: number };

const STORAGE_TAGS = new Set(Object.keys(STORAGES).map((s) => `torch.${s}`));
const REBUILDERS = ['torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state'];

/** Checks a persistent id: `('storage', torch.XStorage, key, location, numel)` (+ a `None` view in the legacy format). */
function storageId(pid: PickleValue, at: number, file: string): { key: string; type: StorageType; numel: number } {
  const ok = Array.isArray(pid) && pid[0] === 'storage' && (pid.length === 5 || (pid.length === 6 && pid[5] === null));
  if (!ok) throw new DataFormatError(file, 'persistent id is not a storage reference', { offset: at, expected: "('storage', type, key, location, numel)" });
  const [, type, key, , numel] = pid;
  if (!(type instanceof PickleGlobal) || type.module !== 'torch' || !Object.hasOwn(STORAGES, type.name)) {
    throw new UnsafePickleError(file, at, 'BINPERSID', 'storage of an unsupported type', type instanceof PickleGlobal ? type.qualifiedName : String(type));
  }
  if (typeof key !== 'string' || !isInt(numel) || numel < 0) throw new DataFormatError(file, 'storage reference is malformed', { offset: at });
  return { key, type: STORAGES[type.name], numel };
}

/**
 * Runs the state dict's pickle with storages from `lookup`, building each tensor as the pickle
 * rebuilds it, and flattens the result into dotted names.
 */
function decodeStateDict(pkl: Uint8Array, baseOffset: number, lookup: StorageLookup, file: string, fileBytes: number, options: TorchFileOptions): TorchFile {
  const storages = new Map<string, StorageRef>();
  // Every tensor's bytes come out of a storage; several tensors may view one storage, and float16
  // widens to float32, so the output may exceed the file somewhat — but never by more than this.
  const budget = 4 * fileBytes + (1 << 20);
  let produced = 0;
  const converted = new Map<string, number>();

  const persistentLoad = (pid: PickleValue, at: number): PickleValue => {
    const { key, type, numel } = storageId(pid, at, file);
    const known = storages.get(key);
    if (known) return known;
    const { bytes, offset } = lookup(key, at);
    if (numel * type.itemBytes > bytes.length) {
      throw new DataFormatError(file, `storage '${key}' is shorter than the pickle says`, { offset, expected: `${numel * type.itemBytes} bytes`, found: `${bytes.length}` });
    }
    const ref = new StorageRef(key, type, bytes, numel);
    storages.set(key, ref);
    return ref;
  };
  const rebuildTensor = (args: PickleValue[], at: number): PickleValue => {
    if (args.length < 6 || args.length > 7) throw new DataFormatError(file, '_rebuild_tensor_v2 takes 6 or 7 arguments', { offset: at, found: String(args.length) });
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof StorageRef)) throw new DataFormatError(file, 'tensor is not backed by a storage', { offset: at });
    if (!isInt(offset) || offset < 0 || !isIntTuple(size) || !isIntTuple(stride) || size.length !== stride.length) {
      throw new DataFormatError(file, 'tensor has a malformed offset, size or stride', { offset: at, found: `offset ${String(offset)}, size ${JSON.stringify(size)}, stride ${JSON.stringify(stride)}` });
    }
    return viewOf(storage, offset, size, stride, at);
  };

  const viewOf = (s: StorageRef, offset: number, size: number[], stride: number[], at: number): HostTensor => {
    let numel = 1;
    let last = offset;
    for (let i = 0; i < size.length; i++) {
      numel *= size[i];
      last += (size[i] - 1) * stride[i];
    }
    if (numel === 0) return { dtype: s.type.dtype, shape: [...size], data: typedArrayOf(s.type.dtype, 0) };
    if (last >= s.numel || numel > s.numel) {
      throw new DataFormatError(file, `tensor view runs past its storage '${s.key}'`, {
        offset: at,
        expected: `elements within ${s.numel}`,
        found: `offset ${offset}, size [${size}], stride [${stride}] (needs ${numel} elements up to index ${last})`,
      });
    }
    const outBytes = numel * (s.type.dtype === 'int64' ? 8 : s.type.dtype === 'uint8' || s.type.dtype === 'bool' ? 1 : 4);
    produced += outBytes;
    if (produced > budget) throw new DataFormatError(file, 'tensors claim more data than the file holds', { offset: at, expected: `<= ${budget} bytes in all`, found: `${produced}` });
    if (s.type.convertedFrom) converted.set(s.type.convertedFrom, (converted.get(s.type.convertedFrom) ?? 0) + 1);
    const data = typedArrayOf(s.type.dtype, numel);
    const dv = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
    const item = s.type.itemBytes;
    // Row-major strides: the view is one run of the storage, copied (or converted) in one pass.
    let contiguous = true;
    for (let i = size.length - 1, expect = 1; i >= 0; expect *= size[i], i--) if (size[i] !== 1 && stride[i] !== expect) contiguous = false;
    if (contiguous && !s.type.convertedFrom && s.type.dtype !== 'bool') {
      new Uint8Array(data.buffer).set(s.bytes.subarray(offset * item, (offset + numel) * item));
      return { dtype: s.type.dtype, shape: [...size], data };
    }
    // Any other view (transposed, sliced): walk the indices like an odometer.
    const idx = new Array<number>(size.length).fill(0);
    let src = offset;
    for (let k = 0; k < numel; k++) {
      (data as unknown as (number | bigint)[])[k] = s.type.read(dv, src * item);
      for (let d = size.length - 1; d >= 0; d--) {
        if (++idx[d] < size[d]) {
          src += stride[d];
          break;
        }
        src -= (size[d] - 1) * stride[d];
        idx[d] = 0;
      }
    }
    return { dtype: s.type.dtype, shape: [...size], data };
  };

  const tensorArg = (args: PickleValue[], at: number, fn: string) => {
    const t = args[0];
    if (!isHostTensor(t)) throw new DataFormatError(file, `${fn} expects a tensor`, { offset: at });
    return t;
  };
  const root = unpickle(pkl, {
    file,
    baseOffset,
    persistentLoad,
    tags: STORAGE_TAGS,
    callables: {
      'collections.OrderedDict': (args, at) => {
        if (args.length !== 0) throw new DataFormatError(file, 'OrderedDict(...) with arguments is not supported', { offset: at });
        return new Map();
      },
      'torch._utils._rebuild_tensor_v2': rebuildTensor,
      'torch._utils._rebuild_parameter': (args, at) => tensorArg(args, at, '_rebuild_parameter'),
      'torch._utils._rebuild_parameter_with_state': (args, at) => tensorArg(args, at, '_rebuild_parameter_with_state'),
    },
  });

  const tensors = flatten(root, file, options.maxDepth ?? 64);
  const notes = [...converted].map(([from, count]) => `${count} ${from} tensor${count === 1 ? '' : 's'} converted to ${from.startsWith('int') ? 'int32' : 'float32'}`);
  return { tensors, notes };
}

/**
 * PyTorch < 1.6 wrote one stream: pickles of the magic number, the format version (1001) and the
 * machine's sizes and byte order; the object's pickle, with storages as persistent ids; a pickle of
 * the storage keys; then each storage in that order as an int64 element count and its raw bytes.
 * The object's pickle is run twice: once, calling nothing, to learn each storage's element type
 * (the storages' sizes in bytes depend on it), then for real once the storages are located.
 */
function decodeLegacy(bytes: Uint8Array, file: string, options: TorchFileOptions): TorchFile {
  let pos = 0;
  const next = (extra: Partial<UnpickleOptions> = {}) => {
    const { value, length } = unpickleFirst(bytes.subarray(pos), { file, baseOffset: pos, callables: {}, ...extra });
    pos += length;
    return value;
  };
  next(); // the magic number, already recognised
  const version = next();
  if (version !== 1001) throw new DataFormatError(file, 'unsupported legacy torch.save version', { offset: pos, expected: '1001', found: String(version) });
  const sys = next();
  if (!(sys instanceof Map) || sys.get('little_endian') !== true) throw new DataFormatError(file, 'tensor data is not little-endian', { offset: pos, hint: 'save the file on a little-endian machine' });
  const mainStart = pos;
  const types = new Map<string, StorageType>();
  // First pass: dicts are built (SETITEM needs one), tensors are not.
  const calls = { ...Object.fromEntries(REBUILDERS.map((name) => [name, () => null])), 'collections.OrderedDict': () => new Map() };
  next({
    tags: STORAGE_TAGS,
    callables: calls,
    persistentLoad: (pid, at) => {
      const { key, type } = storageId(pid, at, file);
      types.set(key, type);
      return null;
    },
  });
  const mainEnd = pos;
  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new DataFormatError(file, 'legacy storage key list is malformed', { offset: mainEnd });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const located = new Map<string, { bytes: Uint8Array; offset: number }>();
  for (const key of keys as string[]) {
    const type = types.get(key);
    if (!type) throw new DataFormatError(file, `legacy storage '${key}' is not used by the pickle`, { offset: pos });
    if (pos + 8 > bytes.length) throw new DataFormatError(file, `legacy storage '${key}' is truncated`, { offset: pos });
    const numel = dv.getBigInt64(pos, true);
    const size = numel * BigInt(type.itemBytes);
    if (numel < 0n || size > BigInt(bytes.length - pos - 8)) {
      throw new DataFormatError(file, `legacy storage '${key}' runs past the end of the file`, { offset: pos, expected: `<= ${bytes.length - pos - 8} bytes`, found: `${size}` });
    }
    located.set(key, { bytes: bytes.subarray(pos + 8, pos + 8 + Number(size)), offset: pos + 8 });
    pos += 8 + Number(size);
  }
  const lookup: StorageLookup = (key, at) => {
    const s = located.get(key);
    if (!s) throw new DataFormatError(file, `storage '${key}' is missing from the file`, { offset: at });
    return s;
  };
  return decodeStateDict(bytes.subarray(mainStart, mainEnd), mainStart, lookup, file, bytes.length, options);
}

function isHostTensor(v: unknown): v is HostTensor {
  return typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v && !(v instanceof Map) && !Array.isArray(v);
}

/**
 * Collects the tensors of a pickled value by dotted path. Each dict or list is visited once, so
 * shared or cyclic references (which a pickle can build through its memo) cannot make the walk
 * exponential or endless; depth is bounded.
 */
function flatten(root: PickleValue, file: string, maxDepth: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  const seen = new Set<object>();
  const walk = (v: PickleValue, path: string, depth: number) => {
    if (isHostTensor(v)) {
      if (Object.hasOwn(out, path)) throw new DataFormatError(file, `two tensors have the name '${path}'`);
      out[path] = v;
      return;
    }
    if (!(v instanceof Map) && !Array.isArray(v)) return;
    if (depth > maxDepth) throw new DataFormatError(file, 'pickled object is nested too deeply', { expected: `<= ${maxDepth} levels`, found: path });
    if (seen.has(v)) throw new DataFormatError(file, `the same dict or list appears twice (at '${path}')`, { expected: 'a tree of dicts and lists' });
    seen.add(v);
    const entries: [PickleKey, PickleValue][] = v instanceof Map ? [...v] : v.map((x, i) => [i, x]);
    for (const [k, x] of entries) walk(x, path ? `${path}.${String(k)}` : String(k), depth + 1);
  };
  walk(root, '', 0);
  if (isHostTensor(root)) throw new DataFormatError(file, 'the file holds a single tensor, not a state dict', { expected: 'a dict of tensors' });
  return out;
}
