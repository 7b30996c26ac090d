import { DataFormatError } from './errors.js';

/**
 * A restricted reader for Python pickles (protocols 2–5), enough for what `torch.save` writes for
 * a state dict and nothing more. Pickle is a small stack machine whose `GLOBAL` + `REDUCE` opcodes
 * call any importable Python function — that is how a malicious `.pth` file runs code in
 * `torch.load`. Here no opcode calls anything the caller did not allow by name: every global is
 * looked up in an allow-list of handlers written in TypeScript, object-building opcodes that would
 * instantiate arbitrary classes (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*) are refused, and every length
 * the stream declares is checked against the bytes that remain before anything is allocated.
 */

/** A pickle that asks for something this reader will not do (an unknown global, a forbidden opcode). */
export class UnsafePickleError extends DataFormatError {
  /** The opcode's name (`GLOBAL`, `NEWOBJ`, …). */
  readonly opcode: string;
  /** The global it referred to, `module.name`, where there was one. */
  readonly global?: string;
  constructor(file: string, offset: number, opcode: string, problem: string, global?: string) {
    super(file, problem, {
      offset,
      expected: 'only what a PyTorch state dict holds (tensors, dicts, lists, tuples, numbers, strings)',
      found: global ? `${opcode} ${global}` : opcode,
      hint: 're-save the weights alone, e.g. torch.save(model.state_dict(), path), or convert them to .safetensors',
    });
    this.opcode = opcode;
    this.global = global;
  }
}

/** A Python global (`module.name`) the stream named; only handlers may turn it into a value. */
export class PickleGlobal {
  constructor(
    /** The Python module path, e.g. `torch._utils` or `collections`. */
    readonly module: string,
    /** The attribute inside {@link PickleGlobal.module}, e.g. `_rebuild_tensor_v2`. */
    readonly name: string,
  ) {}
  /** `module.name`, the key handlers and tags are looked up by (e.g. `collections.OrderedDict`). */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Python tuples, told apart from lists only because handlers check their arguments' shape. */
export type PickleValue = null | boolean | number | bigint | string | Uint8Array | PickleValue[] | Map<PickleKey, PickleValue> | PickleGlobal | object;
/** A value usable as a dict key: the hashable scalars a state dict's keys can be. */
export type PickleKey = string | number | bigint | boolean | null;

/** What {@link unpickle} may do: the allowed callables and tags, persistent-id resolution, and limits. */
export interface UnpickleOptions {
  /** The file, for errors. */
  file: string;
  /** Byte offset of the pickle inside the file, so errors point into the file. Default 0. */
  baseOffset?: number;
  /**
   * Callables `REDUCE` may apply, by `module.name`. A handler gets the argument tuple and returns
   * the value; it validates the arguments itself and throws a typed error on anything else.
   */
  callables: Record<string, (args: PickleValue[], at: number) => PickleValue>;
  /** Globals that may appear as plain values (type tags such as `torch.FloatStorage`). */
  tags?: ReadonlySet<string>;
  /** Resolves a `BINPERSID` id (torch: a storage); without it persistent ids are refused. */
  persistentLoad?: (pid: PickleValue, at: number) => PickleValue;
  /** Most entries on the stack plus the mark stack, and in the memo. Default 1 000 000. */
  maxStack?: number;
}

// Opcode bytes (CPython Lib/pickle.py).
const OP = {
  PROTO: 0x80,
  FRAME: 0x95,
  STOP: 0x2e,
  MARK: 0x28,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  BINBYTES8: 0x8e,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  APPEND: 0x61,
  APPENDS: 0x65,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  MEMOIZE: 0x94,
  GLOBAL: 0x63,
  STACK_GLOBAL: 0x93,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  BUILD: 0x62,
} as const;

/** Opcodes refused by name: the ones that build arbitrary objects, and the text-protocol forms. */
const REFUSED: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x50: 'PERSID',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};
const NAMES = new Map<number, string>([...Object.entries(OP).map(([k, v]) => [v, k] as [number, string]), ...Object.entries(REFUSED).map(([k, v]) => [Number(k), v] as [number, string])]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs the restricted pickle machine over `bytes` and returns the value `STOP` leaves on the stack.
 * Dicts (and `OrderedDict`s) become `Map`s in insertion order, lists and tuples arrays, Python ints
 * numbers (or `bigint` past 2^53). Throws `UnsafePickleError` for anything outside the allow-list
 * and `DataFormatError` for a damaged stream — never anything else for any input.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PickleValue {
  return unpickleFirst(bytes, options).value;
}

/**
 * Like {@link unpickle}, for a stream that holds more after the first pickle (torch's legacy
 * format writes several in a row): returns the value and how many bytes its pickle took.
 */
export function unpickleFirst(bytes: Uint8Array, options: UnpickleOptions): {
  /** The value `STOP` left on the stack. */
  value: PickleValue;
  /** Bytes the pickle took from the start of `bytes`, its `STOP` opcode included. */
  length: number;
} {
  const { file, callables, persistentLoad } = options;
  const base = options.baseOffset ?? 0;
  const tags = options.tags ?? new Set<string>();
  const maxStack = options.maxStack ?? 1_000_000;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  let stack: PickleValue[] = [];
  const marks: PickleValue[][] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opAt = 0;
  let opName = '';

  const bad = (problem: string, details: { expected?: string; found?: string } = {}) => new DataFormatError(file, `pickle: ${problem} (${opName})`, { offset: base + opAt, ...details });
  const need = (k: number) => {
    if (k > n - pos) throw bad(`declares ${k} bytes but ${n - pos} remain`);
  };
  const take = (k: number) => {
    need(k);
    const s = bytes.subarray(pos, pos + k);
    pos += k;
    return s;
  };
  const push = (v: PickleValue) => {
    if (stack.length + marks.length >= maxStack) throw bad('stack too deep', { expected: `<= ${maxStack} entries` });
    stack.push(v);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0) throw bad('stack underflow');
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length === 0) throw bad('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PickleValue[] => {
    const items = stack;
    if (marks.length === 0) throw bad('no MARK to pop to');
    stack = marks.pop()!;
    return items;
  };
  const text = (raw: Uint8Array) => {
    try {
      return utf8.decode(raw);
    } catch {
      throw bad('string is not valid UTF-8');
    }
  };
  const memoPut = (index: number, v: PickleValue) => {
    if (memo.size >= maxStack && !memo.has(index)) throw bad('memo too large', { expected: `<= ${maxStack} entries` });
    memo.set(index, v);
  };
  const memoGet = (index: number) => {
    if (!memo.has(index)) throw bad(`memo entry ${index} is not defined`);
    return memo.get(index)!;
  };
  const asKey = (k: PickleValue): PickleKey => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return k;
    throw bad('dict key is not a string, number, boolean or None');
  };
  const asDict = (v: PickleValue): Map<PickleKey, PickleValue> => {
    if (!(v instanceof Map)) throw bad('SETITEM on something that is not a dict');
    return v;
  };
  const asList = (v: PickleValue): PickleValue[] => {
    if (!Array.isArray(v) || Object.isFrozen(v)) throw bad('APPEND on something that is not a list');
    return v;
  };
  const globalRef = (module: string, name: string) => {
    const g = new PickleGlobal(module, name);
    if (!Object.hasOwn(callables, g.qualifiedName) && !tags.has(g.qualifiedName)) {
      throw new UnsafePickleError(file, base + opAt, opName, `pickle refers to the global '${g.qualifiedName}', which Kiln does not allow`, g.qualifiedName);
    }
    return g;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1000) throw bad('GLOBAL name is not terminated');
    const s = text(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  // Tuples are frozen arrays, so APPEND cannot mutate one.
  const tuple = (items: PickleValue[]) => Object.freeze(items) as PickleValue[];

  while (true) {
    if (pos >= n) throw new DataFormatError(file, 'pickle ends without STOP', { offset: base + pos });
    opAt = pos;
    const op = bytes[pos++];
    opName = NAMES.get(op) ?? `0x${op.toString(16).padStart(2, '0')}`;
    switch (op) {
      case OP.PROTO: {
        const v = take(1)[0];
        if (v < 2 || v > 5) throw bad('unsupported pickle protocol', { expected: '2 to 5', found: String(v) });
        break;
      }
      case OP.FRAME:
        // A frame only announces how many bytes follow; the opcodes inside are read as usual.
        take(8);
        break;
      case OP.STOP:
        return { value: pop(), length: pos };
      case OP.MARK:
        if (stack.length + marks.length >= maxStack) throw bad('too many nested MARKs', { expected: `<= ${maxStack}` });
        marks.push(stack);
        stack = [];
        break;
      case OP.POP:
        if (stack.length > 0) pop();
        else popMark();
        break;
      case OP.POP_MARK:
        popMark();
        break;
      case OP.DUP:
        push(top());
        break;
      case OP.NONE:
        push(null);
        break;
      case OP.NEWTRUE:
        push(true);
        break;
      case OP.NEWFALSE:
        push(false);
        break;
      case OP.BININT:
        need(4);
        push(dv.getInt32(pos, true));
        pos += 4;
        break;
      case OP.BININT1:
        push(take(1)[0]);
        break;
      case OP.BININT2:
        need(2);
        push(dv.getUint16(pos, true));
        pos += 2;
        break;
      case OP.LONG1:
      case OP.LONG4: {
        let len: number;
        if (op === OP.LONG1) len = take(1)[0];
        else {
          need(4);
          len = dv.getInt32(pos, true);
          pos += 4;
        }
        // Python ints in a state dict are small; 64 bytes (512 bits) is far beyond any of them.
        if (len < 0 || len > 64) throw bad('integer too long', { expected: '<= 64 bytes', found: String(len) });
        const raw = take(len);
        let v = 0n;
        for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]);
        if (len > 0 && raw[len - 1] & 0x80) v -= 1n << BigInt(8 * len);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case OP.BINFLOAT:
        need(8);
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case OP.SHORT_BINUNICODE:
        push(text(take(take(1)[0])));
        break;
      case OP.BINUNICODE: {
        need(4);
        const len = dv.getUint32(pos, true);
        pos += 4;
        push(text(take(len)));
        break;
      }
      case OP.BINUNICODE8:
      case OP.BINBYTES8: {
        need(8);
        const len = dv.getBigUint64(pos, true);
        pos += 8;
        if (len > BigInt(n - pos)) throw bad(`declares ${len} bytes but ${n - pos} remain`);
        const raw = take(Number(len));
        push(op === OP.BINUNICODE8 ? text(raw) : raw.slice());
        break;
      }
      case OP.SHORT_BINBYTES:
        push(take(take(1)[0]).slice());
        break;
      case OP.BINBYTES: {
        need(4);
        const len = dv.getUint32(pos, true);
        pos += 4;
        push(take(len).slice());
        break;
      }
      case OP.EMPTY_DICT:
        push(new Map());
        break;
      case OP.EMPTY_LIST:
        push([]);
        break;
      case OP.EMPTY_TUPLE:
        push(tuple([]));
        break;
      case OP.TUPLE:
        push(tuple(popMark()));
        break;
      case OP.TUPLE1:
        push(tuple([pop()]));
        break;
      case OP.TUPLE2: {
        const b = pop();
        push(tuple([pop(), b]));
        break;
      }
      case OP.TUPLE3: {
        const c = pop();
        const b = pop();
        push(tuple([pop(), b, c]));
        break;
      }
      case OP.APPEND: {
        const v = pop();
        asList(top()).push(v);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        const list = asList(top());
        for (const v of items) list.push(v);
        break;
      }
      case OP.SETITEM: {
        const v = pop();
        const k = asKey(pop());
        asDict(top()).set(k, v);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        if (items.length % 2) throw bad('SETITEMS with an odd number of items');
        const d = asDict(top());
        for (let i = 0; i < items.length; i += 2) d.set(asKey(items[i]), items[i + 1]);
        break;
      }
      case OP.BINPUT:
        memoPut(take(1)[0], top());
        break;
      case OP.LONG_BINPUT:
        need(4);
        memoPut(dv.getUint32(pos, true), top());
        pos += 4;
        break;
      case OP.MEMOIZE:
        memoPut(memo.size, top());
        break;
      case OP.BINGET:
        push(memoGet(take(1)[0]));
        break;
      case OP.LONG_BINGET:
        need(4);
        push(memoGet(dv.getUint32(pos, true)));
        pos += 4;
        break;
      case OP.GLOBAL: {
        const module = line();
        push(globalRef(module, line()));
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw bad('STACK_GLOBAL needs two strings');
        push(globalRef(module, name));
        break;
      }
      case OP.BINPERSID: {
        const pid = pop();
        if (!persistentLoad) throw new UnsafePickleError(file, base + opAt, opName, 'pickle uses persistent ids, which this file type does not allow');
        push(persistentLoad(pid, base + opAt));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PickleGlobal) || !Object.hasOwn(callables, fn.qualifiedName)) {
          const what = fn instanceof PickleGlobal ? fn.qualifiedName : typeof fn;
          throw new UnsafePickleError(file, base + opAt, opName, `pickle calls '${what}', which Kiln does not allow`, fn instanceof PickleGlobal ? fn.qualifiedName : undefined);
        }
        if (!Array.isArray(args)) throw bad('REDUCE arguments are not a tuple');
        push(callables[fn.qualifiedName](args, base + opAt));
        break;
      }
      case OP.BUILD: {
        // torch pickles a state dict's `_metadata` attribute (module versions) with BUILD on the
        // OrderedDict; attribute state is dropped, and BUILD on anything but a dict is refused.
        const state = pop();
        if (!(top() instanceof Map) || !(state instanceof Map || state === null)) {
          throw new UnsafePickleError(file, base + opAt, opName, 'pickle sets the state of an object that is not a dict');
        }
        break;
      }
      default: {
        const refused = REFUSED[op];
        if (refused) throw new UnsafePickleError(file, base + opAt, refused, `pickle opcode ${refused} is not allowed`);
        throw bad('unknown or unsupported pickle opcode', { found: `0x${op.toString(16).padStart(2, '0')}` });
      }
    }
  }
}
