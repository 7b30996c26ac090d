import { beforeAll, describe, expect, it } from 'vitest';
import { tf, DataFormatError, Rng, decodeSafetensors, encodeSafetensors, toHost } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { StateDictMismatchError } from '@kiln/layers';
import { createModel, loadWeights, saveWeights } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

describe("Kiln's own weight files (safetensors)", () => {
  it('save → load reproduces every parameter and buffer, and the outputs', async () => {
    const a = createModel('resnet18', { numClasses: 3, smallInput: true, rng: new Rng(1) });
    // Non-trivial running statistics so buffers matter.
    const x = tf.randomNormal([4, 16, 16, 3], 0, 1, 'float32', 2);
    tf.dispose(a.forward(x));
    a.eval();
    const bytes = await saveWeights(a, { model: 'resnet18' });
    const b = createModel('resnet18', { numClasses: 3, smallInput: true, skipInit: true }).eval();
    const { metadata, problems } = loadWeights(b, bytes, { file: 'w.safetensors' });
    expect(problems).toEqual([]);
    expect(metadata).toMatchObject({ model: 'resnet18', format: 'kiln-weights', layout: 'NHWC' });
    expect(b.stateDict()['layer1.0.bn1.num_batches_tracked'].dataSync()[0]).toBe(1);
    const [ya, yb] = [a.forward(x), b.forward(x)];
    expect(tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0]).toBe(0);
    tf.dispose([x, ya, yb]);
    a.dispose();
    b.dispose();
    // Seeded initialisation of ResNet-18's 11M parameters takes seconds on a loaded 2-core machine.
  }, 60_000);

  it('loads a model stored under a prefix (as inside a checkpoint)', () => {
    const a = createModel('lenet5', { rng: new Rng(1) });
    const host = Object.fromEntries(Object.entries(a.stateDict()).map(([k, v]) => [`model.${k}`, toHost(v)]));
    host['optimizer.0.m'] = toHost(a.stateDict()['features.0.bias']);
    const b = createModel('lenet5', { skipInit: true });
    loadWeights(b, encodeSafetensors(host), { prefix: 'model.' });
    expect(tf.max(tf.abs(tf.sub(a.stateDict()['classifier.4.weight'], b.stateDict()['classifier.4.weight']))).dataSync()[0]).toBe(0);
    a.dispose();
    b.dispose();
  });

  it('a file for another model names each mismatched key; a corrupt file names the byte offset', async () => {
    const a = createModel('lenet5', { numClasses: 10, skipInit: true });
    const b = createModel('lenet5', { numClasses: 5, skipInit: true });
    const saved = await saveWeights(a);
    expect(() => loadWeights(b, saved, { file: 'ten.safetensors' })).toThrow(StateDictMismatchError);
    expect(() => loadWeights(b, saved, { file: 'ten.safetensors' })).toThrow(/classifier\.4\.weight: shape \[84,5\] expected, \[84,10\] found[\s\S]*ten\.safetensors/);
    const bytes = saved.slice(0, 40);
    expect(() => loadWeights(b, bytes, { file: 'cut.safetensors' })).toThrow(DataFormatError);
    expect(decodeSafetensors(saved).metadata.format).toBe('kiln-weights');
    a.dispose();
    b.dispose();
  });
});
