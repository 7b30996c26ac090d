import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deflateSync } from 'fflate';
import { DataFormatError, KilnError, UnsafePickleError, ZipArchive, decodeTorchFile, isTorchFile, unpickle, type HostTensor } from '../src/index.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tools/fixtures/core/torch');
const read = (name: string) => new Uint8Array(readFileSync(path.join(DIR, name)));
const expected = JSON.parse(readFileSync(path.join(DIR, 'torch_files.json'), 'utf8')) as {
  files: Record<string, Record<string, { shape: number[]; values: (number | string)[] }>>;
};

function expectMatches(t: HostTensor, want: { shape: number[]; values: (number | string)[] }, key: string) {
  expect(t.shape, key).toEqual(want.shape);
  const got = Array.from(t.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));
  expect(got.length, key).toBe(want.values.length);
  for (let i = 0; i < got.length; i++) {
    if (typeof want.values[i] === 'string') expect(got[i], `${key}[${i}]`).toBe(want.values[i]);
    else expect(Math.fround(got[i] as number), `${key}[${i}]`).toBe(Math.fround(want.values[i] as number));
  }
}

describe('decodeTorchFile reads what torch.save writes', () => {
  it.each(['state_dict.pth', 'state_dict_legacy.pth', 'checkpoint.pth'])('%s: every tensor, dtype conversion and view as torch.load sees it', (name) => {
    const bytes = read(name);
    expect(isTorchFile(bytes)).toBe(true);
    const { tensors } = decodeTorchFile(bytes, name);
    const want = expected.files[name];
    for (const [key, w] of Object.entries(want)) {
      expect(tensors[key], key).toBeDefined();
      expectMatches(tensors[key], w, key);
    }
    // Nothing but tensors is reported (epoch, floats, None, bools and lists of them are dropped).
    expect(Object.keys(tensors).filter((k) => !(k in want))).toEqual([]);
  });
});

describe('decodeTorchFile dtypes', () => {
  it('keeps int64/int32/uint8/bool, widens float16/bfloat16 and narrows float64 to float32, with notes', () => {
    const { tensors, notes } = decodeTorchFile(read('state_dict.pth'), 'state_dict.pth');
    const dtypes = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.dtype]));
    expect(dtypes).toMatchObject({ 'conv.weight': 'float32', 'bn.num_batches_tracked': 'int64', f64: 'float32', f16: 'float32', bf16: 'float32', i32: 'int32', u8: 'uint8', mask: 'bool' });
    expect(tensors['bn.num_batches_tracked'].data).toBeInstanceOf(BigInt64Array);
    expect(notes).toEqual(expect.arrayContaining(['1 float64 tensor converted to float32', '1 float16 tensor converted to float32', '1 bfloat16 tensor converted to float32']));
  });
});

// ---- Hand-built pickles and archives, for what torch.save never writes ----

const enc = new TextEncoder();
/** Concatenates opcodes and operands (numbers are single bytes, strings are latin-1 bytes). */
function bytesOf(...parts: (number | string | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') for (const ch of p) out.push(ch.charCodeAt(0));
    else out.push(...p);
  }
  return new Uint8Array(out);
}
const u32le = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const binunicode = (s: string) => bytesOf('X', u32le(enc.encode(s).length), enc.encode(s));

/**
 * A zip of `files` (stored, as torch writes them, or deflated), for wrapping crafted pickles.
 * `declare` overrides the uncompressed size an entry claims.
 */
function zipOf(files: Record<string, Uint8Array>, options: { deflate?: boolean; declare?: Record<string, number> } = {}): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, raw] of Object.entries(files)) {
    const data = options.deflate ? deflateSync(raw) : raw;
    const size = options.declare?.[name] ?? raw.length;
    const n = enc.encode(name);
    const local = new Uint8Array(30 + n.length);
    const ldv = new DataView(local.buffer);
    ldv.setUint32(0, 0x04034b50, true);
    ldv.setUint16(8, options.deflate ? 8 : 0, true);
    ldv.setUint32(18, data.length, true);
    ldv.setUint32(22, size, true);
    ldv.setUint16(26, n.length, true);
    local.set(n, 30);
    const central = new Uint8Array(46 + n.length);
    const cdv = new DataView(central.buffer);
    cdv.setUint32(0, 0x02014b50, true);
    cdv.setUint16(10, options.deflate ? 8 : 0, true);
    cdv.setUint32(20, data.length, true);
    cdv.setUint32(24, size, true);
    cdv.setUint16(28, n.length, true);
    cdv.setUint32(42, offset, true);
    central.set(n, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const cdSize = centrals.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const edv = new DataView(eocd.buffer);
  edv.setUint32(0, 0x06054b50, true);
  edv.setUint16(8, centrals.length, true);
  edv.setUint16(10, centrals.length, true);
  edv.setUint32(12, cdSize, true);
  edv.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, eocd];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
const pth = (pkl: Uint8Array, extra: Record<string, Uint8Array> = {}) => zipOf({ 'archive/data.pkl': pkl, ...extra });

/** A one-tensor state dict `{'w': FloatStorage '0' viewed with the given offset/size/stride}`. */
function tensorPickle(numel: number, offset: number, size: number[], stride: number[]): Uint8Array {
  const ints = (xs: number[]) => bytesOf('(', ...xs.flatMap((x) => ['J', u32le(x)]), 't');
  return bytesOf(0x80, 2, '}', binunicode('w'), 'ctorch._utils\n_rebuild_tensor_v2\n', '(', '(', binunicode('storage'), 'ctorch\nFloatStorage\n', binunicode('0'), binunicode('cpu'), 'J', u32le(numel), 't', 'Q', 'J', u32le(offset), ints(size), ints(stride), 0x89, 'ccollections\nOrderedDict\n', ')', 'R', 't', 'R', 's', '.');
}

function expectTyped(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataFormatError);
    return e as KilnError;
  }
  throw new Error('expected a typed error, got none');
}

describe('the unpickler refuses what a state dict does not hold', () => {
  it('never runs os.system: GLOBAL posix.system is refused, naming the global and its offset', () => {
    const e = expectTyped(() => decodeTorchFile(read('evil_reduce.pth'), 'evil_reduce.pth'));
    expect(e).toBeInstanceOf(UnsafePickleError);
    expect((e as UnsafePickleError).global).toBe('posix.system');
    expect((e as UnsafePickleError).opcode).toBe('GLOBAL');
    expect(e.message).toMatch(/evil_reduce\.pth at byte \d+/);
  });

  it('refuses a class instance pickled with GLOBAL + NEWOBJ', () => {
    const e = expectTyped(() => decodeTorchFile(read('evil_newobj.pth'), 'evil_newobj.pth'));
    expect(e).toBeInstanceOf(UnsafePickleError);
    expect((e as UnsafePickleError).global).toBe('kiln_fixture.Thing');
  });

  it('refuses NEWOBJ, INST, OBJ and EXT opcodes even on allowed globals', () => {
    const newobj = bytesOf(0x80, 2, 'ccollections\nOrderedDict\n', ')', 0x81, '.');
    const e = expectTyped(() => unpickle(newobj, { file: 'x.pkl', callables: { 'collections.OrderedDict': () => new Map() } }));
    expect(e).toBeInstanceOf(UnsafePickleError);
    expect((e as UnsafePickleError).opcode).toBe('NEWOBJ');
    for (const op of [0x69, 0x6f, 0x82, 0x83, 0x84]) {
      expect(expectTyped(() => unpickle(bytesOf(0x80, 2, '(', op, 0, 0, 0, 0, '.'), { file: 'x.pkl', callables: {} }))).toBeInstanceOf(UnsafePickleError);
    }
  });

  it('refuses REDUCE on anything but an allowed callable, and allowed type tags as callables', () => {
    const tagCall = bytesOf(0x80, 2, 'ctorch\nFloatStorage\n', ')', 'R', '.');
    const e = expectTyped(() => decodeTorchFile(pth(tagCall), 'tag.pth'));
    expect(e).toBeInstanceOf(UnsafePickleError);
    expect(e.message).toContain("calls 'torch.FloatStorage'");
    // STACK_GLOBAL spelled with strings on the stack is checked the same way.
    const stackGlobal = bytesOf(0x80, 4, binunicode('builtins'), binunicode('eval'), 0x93, '.');
    expect((expectTyped(() => decodeTorchFile(pth(stackGlobal), 'sg.pth')) as UnsafePickleError).global).toBe('builtins.eval');
  });

  it('checks declared lengths against the bytes that remain before allocating', () => {
    const huge = bytesOf(0x80, 2, 'X', u32le(0xfffffff0), 'abc');
    expect(expectTyped(() => unpickle(huge, { file: 'x.pkl', callables: {} })).message).toMatch(/declares 4294967280 bytes but 3 remain/);
    const huge8 = bytesOf(0x80, 4, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'abc');
    expectTyped(() => unpickle(huge8, { file: 'x.pkl', callables: {} }));
  });

  it('bounds the stack, the memo and the nesting depth', () => {
    const deepMarks = bytesOf(0x80, 2, ...new Array(2000).fill('('), '.');
    expect(expectTyped(() => unpickle(deepMarks, { file: 'x.pkl', callables: {}, maxStack: 1000 })).message).toMatch(/too many nested MARKs/);
    // A list nested 10 000 deep unpickles in constant stack but is refused when walked.
    const deepLists = bytesOf(0x80, 2, ']', ...new Array(10_000).fill([']', 'a']).flat(), '.');
    const nested = bytesOf(0x80, 2, '}', binunicode('x'), ']', ...new Array(10_000).fill(0x85), 's', '.');
    expect(expectTyped(() => decodeTorchFile(pth(nested), 'deep.pth')).message).toMatch(/nested too deeply/);
    expect(() => unpickle(deepLists, { file: 'x.pkl', callables: {} })).not.toThrow();
    // Memo abuse: one list appended to itself, and a "billion laughs" of shared lists.
    const cyclic = bytesOf(0x80, 2, '}', binunicode('x'), ']', 'q', 0, 'h', 0, 'a', 's', '.');
    expect(expectTyped(() => decodeTorchFile(pth(cyclic), 'cycle.pth')).message).toMatch(/appears twice/);
    // list_i = [list_{i-1}, list_{i-1}]: 60 levels is 2^60 paths through 60 lists.
    const laughs: (number | string | Uint8Array)[] = [0x80, 2, '}', binunicode('x'), ']', 'q', 0, '0'];
    for (let i = 1; i < 60; i++) laughs.push(']', 'h', i - 1, 'a', 'h', i - 1, 'a', 'q', i, '0');
    laughs.push('h', 59, 's', '.');
    expect(expectTyped(() => decodeTorchFile(pth(bytesOf(...laughs)), 'laughs.pth')).message).toMatch(/appears twice/);
    expect(expectTyped(() => unpickle(bytesOf(0x80, 2, 'h', 7, '.'), { file: 'x.pkl', callables: {} })).message).toMatch(/memo entry 7 is not defined/);
  });

  it('checks tensor views against the storage before allocating', () => {
    const storage = new Uint8Array(4 * 6);
    // Fits: a [2, 3] view of 6 floats.
    expect(decodeTorchFile(pth(tensorPickle(6, 0, [2, 3], [3, 1]), { 'archive/data/0': storage }), 'ok.pth').tensors.w.shape).toEqual([2, 3]);
    // A view larger than the storage (an expanded view would allocate without bound).
    expect(expectTyped(() => decodeTorchFile(pth(tensorPickle(6, 0, [100000, 100000], [0, 0]), { 'archive/data/0': storage }), 'big.pth')).message).toMatch(/runs past its storage/);
    expect(expectTyped(() => decodeTorchFile(pth(tensorPickle(6, 5, [2], [1]), { 'archive/data/0': storage }), 'off.pth')).message).toMatch(/runs past its storage/);
    // The pickle claims more elements than the archive entry holds.
    expect(expectTyped(() => decodeTorchFile(pth(tensorPickle(1 << 30, 0, [2], [1]), { 'archive/data/0': storage }), 'numel.pth')).message).toMatch(/shorter than the pickle says/);
    // Many tensors viewing one storage: each view fits, together they would multiply the file.
    const n = 100_000;
    const entry = (key: string) =>
      bytesOf(binunicode(key), 'ctorch._utils\n_rebuild_tensor_v2\n', '(', '(', binunicode('storage'), 'ctorch\nFloatStorage\n', binunicode('0'), binunicode('cpu'), 'J', u32le(n), 't', 'Q', 'K', 0, '(', 'J', u32le(n), 't', '(', 'K', 1, 't', 0x89, 'ccollections\nOrderedDict\n', ')', 'R', 't', 'R');
    const dict = (count: number) => bytesOf(0x80, 2, '}', '(', ...Array.from({ length: count }, (_, i) => entry(`k${i}`)), 'u', '.');
    const storage4n = { 'archive/data/0': new Uint8Array(4 * n) };
    expect(Object.keys(decodeTorchFile(pth(dict(2), storage4n), 'tied.pth').tensors)).toEqual(['k0', 'k1']);
    expect(expectTyped(() => decodeTorchFile(pth(dict(40), storage4n), 'shared.pth')).message).toMatch(/tensors claim more data than the file holds/);
    // And a storage that is not there at all.
    expect(expectTyped(() => decodeTorchFile(pth(tensorPickle(6, 0, [6], [1])), 'missing.pth')).message).toMatch(/storage '0' is missing/);
  });

  it('reads deflated archives and refuses zip bombs and too many entries', () => {
    const zip = new ZipArchive(VALID[0], 'state_dict.pth');
    const entries = Object.fromEntries(zip.names.map((n) => [n, zip.read(n).slice()]));
    const deflated = zipOf(entries, { deflate: true });
    expect(deflated.length).toBeLessThan(VALID[0].length);
    const a = decodeTorchFile(deflated, 'deflated.pth').tensors;
    const b = decodeTorchFile(VALID[0], 'stored.pth').tensors;
    for (const k of Object.keys(b)) expect(Array.from(a[k].data as ArrayLike<unknown>), k).toEqual(Array.from(b[k].data as ArrayLike<unknown>));
    // 2 MB of zeros declared as 100 bytes: inflation stops at the declared size.
    const bomb = zipOf({ 'archive/data.pkl': new Uint8Array(2_000_000) }, { deflate: true, declare: { 'archive/data.pkl': 100 } });
    expect(expectTyped(() => decodeTorchFile(bomb, 'bomb.pth')).message).toMatch(/inflates to more than its declared size/);
    // A declared size no deflate stream can reach from so few bytes.
    const ratio = zipOf({ 'archive/data.pkl': new Uint8Array(10) }, { deflate: true, declare: { 'archive/data.pkl': 2 ** 31 } });
    expect(expectTyped(() => decodeTorchFile(ratio, 'ratio.pth')).message).toMatch(/impossible compression ratio/);
    // Many 2 MB entries: the total inflated across the archive is bounded too.
    const many = zipOf(Object.fromEntries([...Array(5).keys()].map((i) => [`archive/data/${i}`, new Uint8Array(2_000_000)])), { deflate: true });
    const archive = new ZipArchive(many, 'many.pth', { maxInflatedBytes: 5_000_000 });
    expect(() => [0, 1, 2, 3, 4].map((i) => archive.read(`archive/data/${i}`))).toThrow(/inflate past the limit/);
    expect(expectTyped(() => decodeTorchFile(VALID[0], 'few.pth', { maxEntries: 3 })).message).toMatch(/too many entries/);
  });

  it("checks the legacy format's storage sizes against the file, and names files that are neither format", () => {
    const legacy = read('state_dict_legacy.pth');
    expect(expectTyped(() => decodeTorchFile(legacy.subarray(0, legacy.length - 10), 'cut.pth')).message).toMatch(/legacy storage '\d+' runs past the end of the file/);
    const magicOnly = bytesOf(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.');
    expect(expectTyped(() => decodeTorchFile(magicOnly, 'old.pth')).message).toMatch(/pickle ends without STOP/);
    expect(expectTyped(() => decodeTorchFile(enc.encode('hello'), 'h.pth')).message).toMatch(/not a torch\.save file/);
  });
});

// ---- Property tests: any input gives a result or a typed error, never anything else ----

/**
 * Runs the decoder: any error that is not a DataFormatError fails the property, and so does a
 * result whose tensors hold more than the reader's budget (4× the file + 1 MiB).
 */
function decodeOrTypedError(bytes: Uint8Array): void {
  let tensors: Record<string, HostTensor>;
  try {
    tensors = decodeTorchFile(bytes, 'prop.pth').tensors;
  } catch (e) {
    if (!(e instanceof DataFormatError)) throw e;
    return;
  }
  const held = new Set(Object.values(tensors).map((t) => t.data.buffer));
  let total = 0;
  for (const b of held) total += b.byteLength;
  if (total > 4 * bytes.length + 2 ** 20) throw new Error(`decoded ${total} bytes from a ${bytes.length}-byte file`);
}
function unpickleOrTypedError(bytes: Uint8Array): void {
  try {
    unpickle(bytes, { file: 'prop.pkl', callables: { 'collections.OrderedDict': () => new Map() }, persistentLoad: () => null });
  } catch (e) {
    if (!(e instanceof DataFormatError)) throw e;
  }
}

const VALID = ['state_dict.pth', 'checkpoint.pth', 'state_dict_legacy.pth'].map(read);
/** Opcodes a state-dict pickle uses plus the refused ones, so mutations hit interesting paths. */
const OPCODES = [0x80, 0x95, 0x2e, 0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x8a, 0x8b, 0x47, 0x58, 0x8c, 0x8d, 0x42, 0x43, 0x8e, 0x7d, 0x5d, 0x29, 0x74, 0x85, 0x86, 0x87, 0x61, 0x65, 0x73, 0x75, 0x71, 0x72, 0x68, 0x6a, 0x94, 0x63, 0x93, 0x51, 0x52, 0x62, 0x69, 0x6f, 0x81, 0x92];

// Each property takes 1–3 s on an idle machine; the timeouts leave room for a loaded one.
describe('property: random and mutated inputs give typed errors only', () => {
  it('random bytes, with and without a zip or pickle header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom('', 'zip', 'pickle'), (body, head) => {
        const prefix = head === 'zip' ? [0x50, 0x4b, 0x03, 0x04] : head === 'pickle' ? [0x80, 0x02] : [];
        const bytes = bytesOf(new Uint8Array(prefix), body);
        decodeOrTypedError(bytes);
        unpickleOrTypedError(bytes);
      }),
      { numRuns: 2000 },
    );
  }, 120_000);

  it('random opcode sequences through the unpickler', () => {
    const token = fc.oneof(fc.constantFrom(...OPCODES).map((o) => [o]), fc.uint8Array({ maxLength: 6 }).map((a) => [...a]));
    fc.assert(
      fc.property(fc.array(token, { maxLength: 200 }), (tokens) => {
        unpickleOrTypedError(bytesOf(0x80, 2, new Uint8Array(tokens.flat())));
        decodeOrTypedError(pth(bytesOf(0x80, 2, new Uint8Array(tokens.flat()))));
      }),
      { numRuns: 3000 },
    );
  }, 120_000);

  it('byte flips, truncations and inserted opcodes in valid torch.save files', () => {
    const mutation = fc.record({
      file: fc.nat({ max: VALID.length - 1 }),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      truncate: fc.option(fc.nat(), { nil: undefined }),
      insert: fc.option(fc.tuple(fc.nat(), fc.constantFrom(...OPCODES), fc.uint8Array({ maxLength: 4 })), { nil: undefined }),
    });
    fc.assert(
      fc.property(mutation, ({ file, flips, truncate, insert }) => {
        let bytes: Uint8Array = VALID[file].slice();
        for (const [at, x] of flips) bytes[at % bytes.length] ^= x;
        if (insert) {
          const at = insert[0] % bytes.length;
          bytes = bytesOf(bytes.subarray(0, at), new Uint8Array([insert[1], ...insert[2]]), bytes.subarray(at));
        }
        if (truncate !== undefined) bytes = bytes.subarray(0, truncate % bytes.length);
        decodeOrTypedError(bytes);
      }),
      { numRuns: 3000 },
    );
  }, 120_000);

  it('mutations inside the pickle itself (re-wrapped so the zip stays valid)', () => {
    // Pull data.pkl and the storages out of the valid file and re-zip them around a mutated pickle,
    // so the mutations reach the unpickler instead of stopping at the zip layer.
    const pkl = readPickle(VALID[0]).slice();
    const storages = Object.fromEntries([...Array(16).keys()].map((i) => [`archive/data/${i}`, new Uint8Array(64 * 8)]));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }), fc.option(fc.nat(), { nil: undefined }), (flips, cut) => {
        let bytes: Uint8Array = pkl.slice();
        for (const [at, x] of flips) bytes[at % bytes.length] ^= x;
        if (cut !== undefined) bytes = bytes.subarray(0, cut % bytes.length);
        decodeOrTypedError(pth(bytes, storages));
      }),
      { numRuns: 3000 },
    );
  }, 120_000);
});

/** data.pkl of a torch.save file, located through the zip's central directory. */
function readPickle(bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const local = 0; // torch writes data.pkl first
  const nameLen = dv.getUint16(local + 26, true);
  const extraLen = dv.getUint16(local + 28, true);
  const size = dv.getUint32(local + 18, true);
  return bytes.subarray(local + 30 + nameLen + extraLen, local + 30 + nameLen + extraLen + size);
}
