import { tf, decodeSafetensors, encodeSafetensors, fromHost, toHostAsync, type HostTensor } from '@kiln/core';
import { StateDictMismatchError, type Module, type StateDictProblem } from '@kiln/layers';

/** How tensors from some other framework's files map onto a Kiln model's state dict. */
export interface WeightConverter {
  /** Where the tensors come from, for messages (`PyTorch`). */
  source: string;
  /** The shape `key` has in the source, given its Kiln shape. */
  expectedShape(key: string, kilnShape: number[]): number[];
  /**
   * The source tensor in Kiln's layout. Conversions run on the host: permuting a 100M-value dense
   * layer there takes a fraction of a second, where engine transposes took several seconds.
   */
  convert(key: string, t: HostTensor): HostTensor;
}

/** Kiln's own layout: nothing to convert. */
export const identityConverter: WeightConverter = {
  source: 'Kiln',
  expectedShape: (_key, shape) => shape,
  convert: (_key, t) => t,
};

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Checks every key of `model`'s state dict against `tensors` (names and source shapes), reports all
 * problems at once (a `StateDictMismatchError` when `strict`), then converts and assigns the
 * matching tensors one at a time, so at most one converted copy is alive at any moment. With
 * `checkOnly` nothing is assigned.
 */
export function assignChecked(
  model: Module,
  tensors: Record<string, HostTensor>,
  converter: WeightConverter,
  options: { strict: boolean; where: string; checkOnly?: boolean },
): StateDictProblem[] {
  const own: [string, tf.Variable][] = [...model.namedParameters().map(([n, p]) => [n, p.variable] as [string, tf.Variable]), ...model.namedBuffers()];
  const problems: StateDictProblem[] = [];
  const ok: [string, tf.Variable, HostTensor][] = [];
  for (const [key, v] of own) {
    const h = Object.hasOwn(tensors, key) ? tensors[key] : undefined;
    const expected = converter.expectedShape(key, v.shape);
    if (!h) problems.push({ key, kind: 'missing' });
    else if (!sameShape(h.shape, expected)) problems.push({ key, kind: 'shape', expected, found: h.shape });
    else ok.push([key, v, h]);
  }
  const ownKeys = new Set(own.map(([k]) => k));
  for (const key of Object.keys(tensors)) if (!ownKeys.has(key)) problems.push({ key, kind: 'unexpected' });
  if (options.checkOnly) return problems;
  if (options.strict && problems.length) throw new StateDictMismatchError(problems, `${model.typeName} ← ${options.where} (${converter.source} layout)`);
  for (const [key, v, h] of ok) {
    tf.tidy(() => {
      const t = fromHost(converter.convert(key, h));
      v.assign(t.dtype === v.dtype ? t : tf.cast(t, v.dtype));
    });
  }
  return problems;
}

/** Metadata written into Kiln weight files. */
export const KILN_WEIGHTS_FORMAT = 'kiln-weights';

/**
 * The model's parameters and buffers as a safetensors file in Kiln's layouts (NHWC/HWIO/[in, out]),
 * with `metadata` (string values) beside `format: kiln-weights`.
 */
export async function saveWeights(model: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const host: Record<string, HostTensor> = {};
  // Asynchronous reads: GPU backends (WebGPU in Node) refuse synchronous ones.
  for (const [k, v] of Object.entries(model.stateDict())) host[k] = await toHostAsync(v);
  return encodeSafetensors(host, { ...metadata, format: KILN_WEIGHTS_FORMAT, layout: 'NHWC' });
}

/**
 * Loads a file written by {@link saveWeights}. Returns the file's metadata and the problems found
 * (none unless `strict: false`). See {@link loadWeightTensors} for `prefix`.
 */
export function loadWeights(
  model: Module,
  bytes: Uint8Array,
  options: { strict?: boolean; file?: string; prefix?: string } = {},
): {
  /** The file's metadata strings. */
  metadata: Record<string, string>;
  /** Keys that did not fit (none in strict mode, which throws instead). */
  problems: StateDictProblem[];
} {
  const file = options.file ?? '<weights>';
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  return { metadata, problems: loadWeightTensors(model, tensors, { ...options, file }) };
}

/**
 * Loads already decoded Kiln-layout tensors. With `prefix` (`model.`), only keys that start with
 * it are used, with the prefix stripped, so a checkpoint that stores the model beside other state
 * (optimizer slots, …) loads too.
 */
export function loadWeightTensors(
  model: Module,
  tensors: Record<string, HostTensor>,
  options: { strict?: boolean; file?: string; prefix?: string } = {},
): StateDictProblem[] {
  let selected = tensors;
  if (options.prefix) {
    selected = {};
    for (const [k, v] of Object.entries(tensors)) if (k.startsWith(options.prefix)) selected[k.slice(options.prefix.length)] = v;
  }
  return assignChecked(model, selected, identityConverter, { strict: options.strict ?? true, where: options.file ?? '<weights>' });
}
