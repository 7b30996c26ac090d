import { tf, ConfigError, KilnError } from '@kiln/core';

/**
 * Collation: turning a list of examples into one batch of tensors. An example's input and target may
 * each be a tensor-like value or a record (nested) of them; a `Schema` says what shape and dtype
 * every leaf has, and every example is checked against it, so a value that does not fit (3.7 as an
 * int32 label, a 10-element mask where 9 were declared) is an error naming the example and field,
 * never a silent truncation.
 */

/** Element types a batch tensor can have. */
export type ExampleDType = 'float32' | 'int32';

/** One leaf of a schema: the shape of one example's value (no batch dimension) and its dtype. */
export interface TensorSpec {
  /** Dimensions of one example's value, without the batch dimension: `[]` for a scalar, `[28, 28, 1]` for an HWC image. */
  shape: number[];
  /** Element type of the batch tensor built for this leaf. */
  dtype: ExampleDType;
}

/** A leaf spec or a record of them, mirroring the structure of an example's `x` or `y`. */
export type Schema = TensorSpec | { [key: string]: Schema };

/** The structure, shapes and dtypes of a dataset's examples. */
export interface ExampleSchema {
  /** Structure, shapes and dtypes of the input `x`. */
  x: Schema;
  /** Structure, shapes and dtypes of the target `y`. */
  y: Schema;
}

/** JavaScript typed arrays holding numbers. */
export type NumericArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint32Array | Uint16Array | Uint8Array | Uint8ClampedArray;

/** Values with an explicit shape (and optionally dtype), in row-major order. */
export interface TensorData {
  /** The values, row-major; as many as the product of `shape`. */
  data: NumericArray | readonly number[];
  /** Dimensions of the value, without the batch dimension (`[]` for a scalar). */
  shape: readonly number[];
  /** Element type; when absent, an integer typed array is int32, a float one float32, and plain numbers float32 in `x` and int32 in `y`. */
  dtype?: ExampleDType;
}

/**
 * A value that becomes one tensor: a number (a scalar), a flat array of numbers (a vector, or the
 * example shape the loader declares), or `{ data, shape, dtype? }`.
 */
export type TensorValue = number | readonly number[] | NumericArray | TensorData;

/** An example's input or target: a tensor-like value or a record of them. */
export type ExampleValue = TensorValue | { readonly [key: string]: ExampleValue };

/** A tensor or a record (nested) of tensors: what a batch holds for an `ExampleValue`. */
export type TensorTree = tf.Tensor | { [key: string]: TensorTree };

/** The batch type for example values of type `V`: tensors for tensor-like values, records of them for records. */
export type Collated<V> = V extends TensorValue ? tf.Tensor : V extends object ? { [K in keyof V]: Collated<V[K]> } : never;

/** An example that does not fit the schema its loader collates to; names the dataset index and field. */
export class InvalidExampleError extends KilnError {
  /** Dataset index of the example. */
  readonly index: number;
  /** Dotted path of the value in the example: `x`, `y`, `y.boxes`. */
  readonly field: string;
  constructor(index: number, field: string, problem: string, expected: string, found: string, hint?: string) {
    super('E_EXAMPLE', `example ${index}, field '${field}': ${problem}`, { where: `example ${index}, field '${field}'`, expected, found, hint });
    this.index = index;
    this.field = field;
  }
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
/** Largest finite float32 plus half an ulp: numbers beyond it round to Infinity. */
const FLOAT32_LIMIT = 3.4028235677973366e38;

function isNumericArray(v: unknown): v is NumericArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);
}

function isTensorData(v: unknown): v is TensorData {
  if (typeof v !== 'object' || v === null || isNumericArray(v) || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  return (isNumericArray(o.data) || Array.isArray(o.data)) && Array.isArray(o.shape) && keys.every((k) => k === 'data' || k === 'shape' || k === 'dtype');
}

/** True for a value that becomes one tensor (as opposed to a record of them). */
export function isTensorValue(v: unknown): v is TensorValue {
  return typeof v === 'number' || Array.isArray(v) || isNumericArray(v) || isTensorData(v);
}

/** True for a leaf of a schema. */
export function isTensorSpec(s: Schema): s is TensorSpec {
  return Array.isArray((s as TensorSpec).shape) && typeof (s as TensorSpec).dtype === 'string';
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (isNumericArray(v)) return `a ${v.constructor.name} of ${v.length}`;
  if (isTensorData(v)) return `{ data: ${v.data.length} values, shape: [${v.shape.join(', ')}]${v.dtype ? `, dtype: ${v.dtype}` : ''} }`;
  if (typeof v === 'object' && v !== null) return `a record with keys ${Object.keys(v).join(', ')}`;
  return String(v);
}

const isIntegerArray = (a: unknown) =>
  a instanceof Int32Array || a instanceof Int16Array || a instanceof Int8Array || a instanceof Uint32Array || a instanceof Uint16Array || a instanceof Uint8Array || a instanceof Uint8ClampedArray;

/**
 * The spec of one value. A typed array or `{ dtype }` says its dtype; plain JavaScript numbers are
 * float32 in an input and int32 in a target (class labels, multi-hot rows): declare float targets
 * with a Float32Array, `{ data, shape, dtype: 'float32' }` or the loader's `schema`.
 */
function inferSpec(v: TensorValue, role: 'x' | 'y'): TensorSpec {
  if (typeof v === 'number') return { shape: [], dtype: role === 'y' ? 'int32' : 'float32' };
  if (isTensorData(v)) return { shape: [...v.shape], dtype: v.dtype ?? inferSpec(v.data, role).dtype };
  const dtype: ExampleDType = isIntegerArray(v) ? 'int32' : v instanceof Float32Array || v instanceof Float64Array ? 'float32' : role === 'y' ? 'int32' : 'float32';
  return { shape: [v.length], dtype };
}

function inferTree(v: unknown, role: 'x' | 'y', field: string, index: number): Schema {
  if (isTensorValue(v)) return inferSpec(v, role);
  if (typeof v !== 'object' || v === null || Object.keys(v).length === 0) {
    throw new InvalidExampleError(index, field, 'not a tensor-like value or a record of them', 'a number, an array of numbers, a typed array, { data, shape, dtype? } or a record of these', describe(v));
  }
  const out: Record<string, Schema> = {};
  for (const [k, child] of Object.entries(v)) out[k] = inferTree(child, role, `${field}.${k}`, index);
  return out;
}

/**
 * The schema of `example` (read at dataset `index`). Parts of `declared` take precedence: a declared
 * leaf's shape and dtype are used as they are (a flat array then fills the declared shape).
 */
export function inferSchema(example: { x: unknown; y: unknown }, index: number, declared: Partial<ExampleSchema> = {}): ExampleSchema {
  if (typeof example !== 'object' || example === null || !('x' in example) || !('y' in example)) {
    throw new InvalidExampleError(index, '(example)', 'an example must have an input x and a target y', '{ x, y }', describe(example));
  }
  return { x: declared.x ?? inferTree(example.x, 'x', 'x', index), y: declared.y ?? inferTree(example.y, 'y', 'y', index) };
}

/** Number of values of one example's leaf. */
function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One batch on the host: per leaf a buffer of [batch, ...shape] values. */
export interface HostArray {
  /** The batch's values for this leaf, row-major: an Int32Array for an int32 leaf, a Float32Array for a float32 one. */
  data: Float32Array | Int32Array;
  /** `[batch, ...shape]`: the number of examples, then the leaf's shape. */
  shape: number[];
}
/** A batch's host buffers: one `HostArray` for a leaf spec, a record of them mirroring a record schema. */
export type HostTree = HostArray | { [key: string]: HostTree };

/** A collated batch still on the host, before upload with `toTensors`. */
export interface HostBatch {
  /** The stacked inputs, shaped like the schema's `x`. */
  x: HostTree;
  /** The stacked targets, shaped like the schema's `y`. */
  y: HostTree;
}

function isHostTensor(t: HostTree): t is HostArray {
  return ArrayBuffer.isView((t as HostArray).data);
}

/** What a collation checks beyond the schema. */
export interface CollateOptions {
  /** Number of classes: scalar int32 targets (class labels) must lie in [0, numClasses). */
  numClasses?: number;
}

/** Copies one value into row `row` of a leaf's batch buffer, checking that it fits the spec. */
function putLeaf(out: Float32Array | Int32Array, row: number, spec: TensorSpec, v: unknown, index: number, field: string, labelBound: number | null): void {
  const size = sizeOf(spec.shape);
  if (!isTensorValue(v)) throw new InvalidExampleError(index, field, 'expected a tensor-like value', `shape [${spec.shape.join(', ')}] ${spec.dtype}`, describe(v));
  let values: ArrayLike<number>;
  if (typeof v === 'number') values = [v];
  else if (isTensorData(v)) {
    if (v.shape.length !== spec.shape.length || v.shape.some((d, k) => d !== spec.shape[k])) {
      throw new InvalidExampleError(index, field, 'wrong shape', `[${spec.shape.join(', ')}] (as the first example)`, `[${v.shape.join(', ')}]`);
    }
    if (v.dtype && v.dtype !== spec.dtype) throw new InvalidExampleError(index, field, 'wrong dtype', spec.dtype, v.dtype);
    values = v.data;
  } else values = v;
  if (values.length !== size) {
    throw new InvalidExampleError(index, field, 'wrong number of values', `${size} (shape [${spec.shape.join(', ')}])`, `${values.length}`, 'every example must have the shape of the first, or of the loader\'s declared schema');
  }
  const at = row * size;
  if (spec.dtype === 'float32') {
    if (values instanceof Float32Array || isIntegerArray(values)) {
      out.set(values as ArrayLike<number>, at);
      return;
    }
    for (let k = 0; k < size; k++) {
      const n = values[k];
      if (typeof n !== 'number' || (Number.isFinite(n) && Math.abs(n) >= FLOAT32_LIMIT)) {
        throw new InvalidExampleError(index, field, `value ${k} does not fit float32`, 'a number within ±3.4e38', String(n));
      }
      out[at + k] = n;
    }
    return;
  }
  // int32: integer typed arrays of 16 bits or less always fit; anything else is checked value by value.
  const exact = values instanceof Int32Array || values instanceof Int16Array || values instanceof Int8Array || values instanceof Uint16Array || values instanceof Uint8Array || values instanceof Uint8ClampedArray;
  for (let k = 0; k < size; k++) {
    const n = values[k];
    if (!exact && !(typeof n === 'number' && Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX)) {
      throw new InvalidExampleError(
        index,
        field,
        `value ${k} does not fit int32`,
        'an integer in [-2147483648, 2147483647]',
        String(n),
        'float targets (regression, soft labels) need dtype float32: give a Float32Array or { data, shape, dtype: "float32" }, or declare it in the loader\'s schema',
      );
    }
    if (labelBound !== null && (n < 0 || n >= labelBound)) {
      throw new InvalidExampleError(index, field, 'class label out of range', Number.isFinite(labelBound) ? `a label in [0, ${labelBound})` : 'a label >= 0', String(n));
    }
    out[at + k] = n;
  }
}

function allocate(schema: Schema, n: number): HostTree {
  if (isTensorSpec(schema)) {
    const size = n * sizeOf(schema.shape);
    return { data: schema.dtype === 'int32' ? new Int32Array(size) : new Float32Array(size), shape: [n, ...schema.shape] };
  }
  return Object.fromEntries(Object.entries(schema).map(([k, s]) => [k, allocate(s, n)]));
}

function fill(out: HostTree, schema: Schema, row: number, v: unknown, index: number, field: string, labelBound: number | null): void {
  if (isTensorSpec(schema)) {
    putLeaf((out as HostArray).data, row, schema, v, index, field, labelBound);
    return;
  }
  if (typeof v !== 'object' || v === null || isTensorValue(v)) {
    throw new InvalidExampleError(index, field, 'expected a record', `a record with keys ${Object.keys(schema).join(', ')}`, describe(v));
  }
  const rec = v as Record<string, unknown>;
  const extra = Object.keys(rec).filter((k) => !(k in schema));
  if (extra.length > 0) throw new InvalidExampleError(index, field, 'unexpected keys', `the keys ${Object.keys(schema).join(', ')}`, `also ${extra.join(', ')}`);
  for (const [k, s] of Object.entries(schema)) {
    if (!(k in rec)) throw new InvalidExampleError(index, `${field}.${k}`, 'missing', describeSchema(s), 'no such key');
    fill((out as Record<string, HostTree>)[k], s, row, rec[k], index, `${field}.${k}`, null);
  }
}

/** A schema in words, for messages: `[28, 28, 1] float32` or `{ image: [..] float32, mask: [..] int32 }`. */
export function describeSchema(s: Schema): string {
  if (isTensorSpec(s)) return `[${s.shape.join(', ')}] ${s.dtype}`;
  return `{ ${Object.entries(s)
    .map(([k, c]) => `${k}: ${describeSchema(c)}`)
    .join(', ')} }`;
}

/**
 * Stacks `examples` (read at dataset `indices`) into host buffers per leaf of `schema`, checking
 * every value. A scalar int32 target is a class label: it must be >= 0 (and below `numClasses`
 * when known).
 */
export function collateExamples(examples: readonly { x: unknown; y: unknown }[], indices: ArrayLike<number>, schema: ExampleSchema, options: CollateOptions = {}): HostBatch {
  const n = examples.length;
  const x = allocate(schema.x, n);
  const y = allocate(schema.y, n);
  const labels = isTensorSpec(schema.y) && schema.y.dtype === 'int32' && schema.y.shape.length === 0;
  const bound = labels ? (options.numClasses ?? Infinity) : null;
  for (let i = 0; i < n; i++) {
    const e = examples[i];
    if (typeof e !== 'object' || e === null) throw new InvalidExampleError(indices[i], '(example)', 'an example must have an input x and a target y', '{ x, y }', describe(e));
    fill(x, schema.x, i, e.x, indices[i], 'x', null);
    fill(y, schema.y, i, e.y, indices[i], 'y', bound);
  }
  return { x, y };
}

/** Uploads host buffers as tensors of the same structure. */
export function toTensors(tree: HostTree): TensorTree {
  if (isHostTensor(tree)) return tf.tensor(tree.data, tree.shape, tree.data instanceof Int32Array ? 'int32' : 'float32');
  return Object.fromEntries(Object.entries(tree).map(([k, t]) => [k, toTensors(t)]));
}

/** The schema a dataset declares in a `schema` property (an `ArrayDataset`, or a view of one), if any. */
export function declaredSchema(dataset: object): ExampleSchema | undefined {
  const s = (dataset as { schema?: unknown }).schema;
  return s && typeof s === 'object' && 'x' in s && 'y' in s ? (s as ExampleSchema) : undefined;
}

/** Checks a declared schema's leaves (shapes of non-negative integers, a known dtype). */
export function checkSchema(s: Schema, where: string): void {
  if (isTensorSpec(s)) {
    if (!s.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new ConfigError(`${where}.shape`, 'non-negative integers', s.shape);
    if (s.dtype !== 'float32' && s.dtype !== 'int32') throw new ConfigError(`${where}.dtype`, "'float32' or 'int32'", s.dtype);
    return;
  }
  if (typeof s !== 'object' || s === null || Object.keys(s).length === 0) throw new ConfigError(where, '{ shape, dtype } or a record of them', s);
  for (const [k, c] of Object.entries(s)) checkSchema(c, `${where}.${k}`);
}
