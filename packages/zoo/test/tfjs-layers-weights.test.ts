import { beforeAll, describe, expect, it } from 'vitest';
import { tf, DataFormatError, KilnError, Rng } from '@kiln/core';
import fc from 'fast-check';
import { wasmBackend } from '@kiln/backend-cpu';
import { StateDictMismatchError } from '@kiln/layers';
import { LeNet5, createModel, loadTfjsLayersWeights } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

/**
 * A tfjs-layers `model.json` + shards for a Keras LeNet-5 with the same layers as Kiln's: the
 * weight names and order a `tf.sequential` of conv2d/max_pooling2d/flatten/dense layers saves
 * (`conv2d/kernel`, `conv2d/bias`, …, kernels HWIO and [in, out]), split over two shards.
 */
function kerasExport(model: LeNet5) {
  const layers: [string, string][] = [
    ['conv2d', 'features.0'],
    ['conv2d_1', 'features.3'],
    ['dense', 'classifier.0'],
    ['dense_1', 'classifier.2'],
    ['dense_2', 'classifier.4'],
  ];
  const weights: { name: string; shape: number[]; dtype: string }[] = [];
  const chunks: Float32Array[] = [];
  for (const [keras, kiln] of layers) {
    for (const [suffix, own] of [
      ['kernel', 'weight'],
      ['bias', 'bias'],
    ]) {
      const v = model.stateDict()[`${kiln}.${own}`];
      weights.push({ name: `${keras}/${suffix}`, shape: v.shape, dtype: 'float32' });
      chunks.push(v.dataSync() as Float32Array);
    }
  }
  const all = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const bytes = new Uint8Array(all.buffer);
  const cut = 4 * 1000;
  const files: Record<string, Uint8Array> = { 'group1-shard1of2.bin': bytes.slice(0, cut), 'group1-shard2of2.bin': bytes.slice(cut) };
  const json = { format: 'layers-model', generatedBy: 'TensorFlow.js tfjs-layers v4.22.0', modelTopology: {}, weightsManifest: [{ paths: Object.keys(files), weights }] };
  return { json, read: (p: string) => files[p] };
}

describe('loading tfjs-layers weights', () => {
  it('loads a Keras-layout model.json + shards in order and reproduces the outputs', () => {
    const src = new LeNet5({ rng: new Rng(1) });
    const { json, read } = kerasExport(src);
    const dst = new LeNet5({ skipInit: true });
    expect(loadTfjsLayersWeights(dst, json, read)).toEqual([]);
    const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 3);
    const [a, b] = [src.forward(x), dst.forward(x)];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
    tf.dispose([x, a, b]);
    src.dispose();
    dst.dispose();
  });

  it('dequantizes uint8 weights (value = q·scale + min)', () => {
    const model = new LeNet5({ skipInit: true });
    const { json, read } = kerasExport(model);
    const w = json.weightsManifest[0].weights;
    // Replace the first kernel by a uint8-quantized one: 150 bytes instead of 600.
    (w[0] as { quantization?: unknown }).quantization = { dtype: 'uint8', scale: 0.5, min: -1 };
    const q = Uint8Array.from({ length: 150 }, (_, i) => i % 7);
    const rest = new Uint8Array([...read('group1-shard1of2.bin'), ...read('group1-shard2of2.bin')].slice(600));
    const files: Record<string, Uint8Array> = { a: new Uint8Array([...q, ...rest]) };
    json.weightsManifest[0].paths = ['a'];
    loadTfjsLayersWeights(model, json, (p) => files[p]);
    const k = model.stateDict()['features.0.weight'].dataSync();
    expect(Array.from(k.slice(0, 8))).toEqual([0, 1, 2, 3, 4, 5, 6, 0].map((v) => v * 0.5 - 1));
    model.dispose();
  });

  it('names both sides of every mismatch, and rejects what is not a model.json', () => {
    const model = new LeNet5({ skipInit: true });
    const { json, read } = kerasExport(model);
    const target = createModel('lenet5', { numClasses: 7, skipInit: true });
    let err: unknown;
    try {
      loadTfjsLayersWeights(target, json, read, { file: 'lenet/model.json' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictMismatchError);
    expect((err as StateDictMismatchError).problems).toContainEqual({ key: 'classifier.4.weight', kind: 'shape', expected: [84, 7], found: [84, 10] });
    // A manifest with the kernel and bias swapped.
    const w = json.weightsManifest[0].weights;
    [w[0], w[1]] = [w[1], w[0]];
    expect(() => loadTfjsLayersWeights(model, json, read)).toThrow(/features\.0\.weight ← conv2d\/bias: expected a 'kernel' weight/);
    expect(() => loadTfjsLayersWeights(model, { modelTopology: {} }, read, { file: 'x.json' })).toThrow(DataFormatError);
    model.dispose();
    target.dispose();
  });
});

describe('hostile model.json files', () => {
  it('refuses shard paths outside the model directory before reading them', () => {
    const model = new LeNet5({ skipInit: true });
    const { json, read } = kerasExport(model);
    const asked: string[] = [];
    for (const bad of ['../../etc/passwd', '/etc/passwd', 'a/../../x.bin', 'C:\\x.bin', 'a\0b']) {
      json.weightsManifest[0].paths = [bad];
      expect(() => loadTfjsLayersWeights(model, json, (p) => (asked.push(p), read(p)))).toThrow(/outside the model directory/);
    }
    expect(asked).toEqual([]);
    model.dispose();
  });

  it('gives only typed errors for mutated manifests (property)', () => {
    const model = new LeNet5({ skipInit: true });
    const { json, read } = kerasExport(model);
    const entry = fc.record({
      name: fc.oneof(fc.string(), fc.constant('conv2d/kernel'), fc.constant(1)),
      shape: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -3, max: 3000 }), fc.double(), fc.constant(2 ** 40)), { maxLength: 4 }), fc.constant('x')),
      dtype: fc.constantFrom('float32', 'int32', 'float16', 'string', '__proto__'),
      quantization: fc.option(fc.record({ dtype: fc.constantFrom('uint8', 'uint16', 'int4', 'constructor'), scale: fc.double(), min: fc.double() }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), fc.boolean(), (weights, keepPaths) => {
        const mutated = { ...json, weightsManifest: [{ paths: keepPaths ? json.weightsManifest[0].paths : ['missing.bin'], weights }] };
        try {
          loadTfjsLayersWeights(model, mutated, (p) => read(p) ?? new Uint8Array(0), { strict: false });
          return true;
        } catch (e) {
          return e instanceof KilnError;
        }
      }),
      { numRuns: 300 },
    );
    model.dispose();
  });
});
