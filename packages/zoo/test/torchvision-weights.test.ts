import { readFileSync } from 'node:fs';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { tf, decodeNpy, decodeSafetensors, encodeSafetensors, fromHost } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { StateDictMismatchError } from '@kiln/layers';
import { createModel, loadTorchvisionWeights, torchvisionStateDict } from '../src/index.js';
import { ensureTorchvisionFixtures, fixtureFile } from './fixtures.js';

const MODELS = ['lenet5', 'alexnet', 'vgg11', 'resnet18', 'resnet50', 'googlenet'];
const { manifest, reason } = ensureTorchvisionFixtures(MODELS);

beforeAll(async () => {
  await wasmBackend().init();
});

/** Kiln's logits for a fixture: torchvision weights loaded, NCHW input transposed to NHWC, eval mode. */
function kilnLogits(name: string): { got: Float32Array; want: Float32Array } {
  const spec = manifest!.models[name];
  const model = createModel(name, { numClasses: spec.numClasses, inChannels: spec.input[0], skipInit: true });
  try {
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(fixtureFile(`${name}.safetensors`))), `${name}.safetensors`);
    loadTorchvisionWeights(model, tensors);
    model.eval();
    const got = tf.tidy(() => {
      const x = tf.transpose(fromHost(decodeNpy(new Uint8Array(readFileSync(fixtureFile(`${name}.input.npy`))))), [0, 2, 3, 1]);
      return model.forward(x).dataSync() as Float32Array;
    });
    const want = decodeNpy(new Uint8Array(readFileSync(fixtureFile(`${name}.logits.npy`)))).data as Float32Array;
    return { got, want };
  } finally {
    model.dispose();
  }
}

describe('torchvision weights give torchvision logits (eval mode, |Δ| ≤ 1e-4, logits scaled to max |y| = 4)', () => {
  beforeEach((ctx) => requireOrSkip(ctx, reason));
  it.each(MODELS)('%s', (name) => {
    const before = tf.memory().numTensors;
    const { got, want } = kilnLogits(name);
    expect(got.length).toBe(want.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    expect(worst).toBeLessThanOrEqual(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);
});

describe('torchvision state dict conversion', () => {
  it('round-trips through PyTorch layouts, permuting the first dense layer after the conv stack', async () => {
    const a = createModel('lenet5');
    const torch = await torchvisionStateDict(a);
    // PyTorch layouts: OIHW conv kernels, [out, in] dense weights, int64 batch counters.
    expect(torch['features.0.weight'].shape).toEqual([6, 1, 5, 5]);
    expect(torch['classifier.0.weight'].shape).toEqual([120, 400]);
    // Row (c, h, w) of PyTorch's first dense weight is Kiln's row (h, w, c).
    const kiln = a.stateDict()['classifier.0.weight'].arraySync() as number[][];
    const [c, h, w] = [3, 2, 4];
    expect(torch['classifier.0.weight'].data[7 * 400 + c * 25 + h * 5 + w]).toBeCloseTo(kiln[(h * 5 + w) * 16 + c][7], 6);
    const b = createModel('lenet5', { skipInit: true });
    const bytes = encodeSafetensors(torch);
    loadTorchvisionWeights(b, decodeSafetensors(bytes).tensors);
    for (const [k, v] of Object.entries(a.stateDict())) expect(tf.max(tf.abs(tf.sub(v, b.stateDict()[k]))).dataSync()[0], k).toBe(0);
    a.dispose();
    b.dispose();
  });

  it('names every missing, unexpected and wrongly shaped key', async () => {
    const a = createModel('resnet18', { numClasses: 10, skipInit: true });
    const torch = await torchvisionStateDict(a);
    delete torch['layer1.0.bn1.running_var'];
    torch['layer9.weight'] = torch['fc.bias'];
    torch['fc.weight'] = { ...torch['fc.weight'], shape: [5, 1024] };
    let err: unknown;
    try {
      loadTorchvisionWeights(a, torch);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictMismatchError);
    const problems = (err as StateDictMismatchError).problems;
    expect(problems).toContainEqual({ key: 'layer1.0.bn1.running_var', kind: 'missing' });
    expect(problems).toContainEqual({ key: 'layer9.weight', kind: 'unexpected' });
    expect(problems).toContainEqual({ key: 'fc.weight', kind: 'shape', expected: [10, 512], found: [5, 1024] });
    expect((err as Error).message).toMatch(/fc\.weight: shape \[10,512\] expected, \[5,1024\] found/);
    // Non-strict loads what matches and returns the same problems.
    expect(loadTorchvisionWeights(a, torch, { strict: false })).toHaveLength(3);
    a.dispose();
  });
});
