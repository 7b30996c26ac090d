import { DataFormatError, type HostTensor } from '@kiln/core';
import { BatchNorm, Conv2d, Linear, StateDictMismatchError, type Module, type StateDictProblem } from '@kiln/layers';
import { assignChecked, identityConverter } from './weight-transfer.js';

/** One entry of a tfjs `weightsManifest` group. */
interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

/** The Keras weight name suffix each Kiln tensor corresponds to, per layer type, in Keras's order. */
function kerasOrder(m: Module): [string, string][] | undefined {
  if (m instanceof Conv2d || m instanceof Linear) return m.config.bias ? [['weight', 'kernel'], ['bias', 'bias']] : [['weight', 'kernel']];
  if (m instanceof BatchNorm) {
    const out: [string, string][] = m.config.affine ? [['weight', 'gamma'], ['bias', 'beta']] : [];
    if (m.config.trackRunningStats) out.push(['running_mean', 'moving_mean'], ['running_var', 'moving_variance']);
    return out;
  }
  return undefined;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2 };

/** A manifest shard path must name a file beside model.json or below it: no absolute paths, no `..`, no NUL. */
function checkShardPath(p: unknown, file: string): string {
  if (typeof p !== 'string' || p.length === 0 || p.includes('\0') || p.startsWith('/') || /^[a-zA-Z]:/.test(p) || p.split(/[\\/]/).includes('..')) {
    throw new DataFormatError(file, 'weightsManifest names a shard outside the model directory', { expected: 'a relative path without ..', found: JSON.stringify(p)?.slice(0, 120) });
  }
  return p;
}

/**
 * Reads the weights of a manifest from the concatenated shard bytes, dequantizing uint8/uint16.
 * Every entry is checked (names, shapes, types, sizes against the bytes actually there) before
 * anything is allocated for it.
 */
function readManifest(manifest: unknown[], readFile: (path: string) => Uint8Array, file: string): { name: string; host: HostTensor }[] {
  const out: { name: string; host: HostTensor }[] = [];
  for (const [gi, g] of manifest.entries()) {
    const group = g as { paths?: unknown; weights?: unknown };
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new DataFormatError(file, `weightsManifest[${gi}] is not a { paths, weights } group`);
    const parts = group.paths.map((p) => readFile(checkShardPath(p, file)));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    let offset = 0;
    for (const entry of group.weights as unknown[]) {
      const w = entry as ManifestWeight;
      if (!w || typeof w.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw new DataFormatError(file, `weightsManifest[${gi}] has an entry without a name and a shape of non-negative integers`, { found: JSON.stringify(entry)?.slice(0, 120) });
      }
      const n = w.shape.reduce((a, b) => a * b, 1);
      const stored = w.quantization?.dtype ?? w.dtype;
      const size = Object.hasOwn(BYTES, stored) ? BYTES[stored] : undefined;
      if (!size || (w.dtype !== 'float32' && w.dtype !== 'int32')) {
        throw new DataFormatError(file, `weight '${w.name}' has a type Kiln cannot read`, { expected: 'float32/int32, optionally quantized to uint8/uint16', found: `${w.dtype}${w.quantization ? ` quantized as ${stored}` : ''}` });
      }
      if (!Number.isSafeInteger(n * size) || offset + n * size > total) throw new DataFormatError(file, `weight files end before '${w.name}'`, { offset, expected: `${n * size} more bytes`, found: `${total - offset}` });
      const raw = bytes.slice(offset, offset + n * size).buffer;
      offset += n * size;
      let data: Float32Array | Int32Array;
      if (w.quantization) {
        const q = stored === 'uint8' ? new Uint8Array(raw) : new Uint16Array(raw);
        const { scale = 1, min = 0 } = w.quantization;
        if (!Number.isFinite(scale) || !Number.isFinite(min)) throw new DataFormatError(file, `weight '${w.name}' has a non-numeric quantization scale or minimum`, { found: JSON.stringify(w.quantization) });
        data = Float32Array.from(q, (v) => v * scale + min);
      } else {
        data = w.dtype === 'int32' ? new Int32Array(raw) : new Float32Array(raw);
      }
      out.push({ name: w.name, host: { dtype: w.dtype === 'int32' ? 'int32' : 'float32', shape: w.shape, data } });
    }
  }
  return out;
}

/**
 * Loads the weights of a tfjs-layers model (`model.json` with a `weightsManifest`, plus its binary
 * shards) into a Kiln model. Keras and Kiln both use NHWC, HWIO kernels and `[in, out]` dense
 * weights, so tensors are matched in order: Kiln's Conv2d/Linear/BatchNorm layers in module order
 * against the manifest's weights in order, each pair checked by kind (`kernel`, `gamma`, …) and
 * shape. Every problem is reported at once, naming both sides. `readFile` returns a shard's bytes
 * given its path as written in the manifest (relative to model.json).
 */
export function loadTfjsLayersWeights(
  model: Module,
  modelJson: unknown,
  readFile: (path: string) => Uint8Array,
  options: { strict?: boolean; file?: string } = {},
): StateDictProblem[] {
  const file = options.file ?? 'model.json';
  const manifest = (modelJson as { weightsManifest?: unknown })?.weightsManifest;
  if (!Array.isArray(manifest)) throw new DataFormatError(file, 'not a tfjs model.json', { expected: 'an object with a weightsManifest array', found: typeof modelJson });
  const source = readManifest(manifest, readFile, file);
  const targets: { key: string; suffix: string }[] = [];
  const problems: StateDictProblem[] = [];
  for (const [path, m] of model.namedModules()) {
    const own = [...m.namedParameters(), ...m.namedBuffers()].filter(([n]) => !n.includes('.')).map(([n]) => n);
    if (own.length === 0) continue;
    const order = kerasOrder(m);
    if (!order) {
      problems.push({ key: `${path} (${m.typeName}): no Keras equivalent`, kind: 'missing' });
      continue;
    }
    for (const [kiln, keras] of order) targets.push({ key: path ? `${path}.${kiln}` : kiln, suffix: keras });
  }
  // Pair in order; rename the source tensors to the Kiln keys they land on.
  const renamed: Record<string, HostTensor> = {};
  const n = Math.min(targets.length, source.length);
  for (let i = 0; i < n; i++) {
    const { key, suffix } = targets[i];
    const { name, host } = source[i];
    const got = name.split('/').pop();
    if (got !== suffix) problems.push({ key: `${key} ← ${name}: expected a '${suffix}' weight`, kind: 'unexpected' });
    else renamed[key] = host;
  }
  for (const t of targets.slice(n)) problems.push({ key: t.key, kind: 'missing' });
  for (const s of source.slice(n)) problems.push({ key: s.name, kind: 'unexpected' });
  if (problems.length && (options.strict ?? true)) {
    // Shapes too, so the user sees everything at once.
    const shapeProblems = assignChecked(model, renamed, identityConverter, { strict: false, where: file, checkOnly: true }).filter((p) => p.kind === 'shape');
    throw new StateDictMismatchError([...problems, ...shapeProblems], `${model.typeName} ← ${file} (tfjs-layers)`);
  }
  return [...problems, ...assignChecked(model, renamed, identityConverter, { strict: options.strict ?? true, where: file })];
}
