import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, decodeNpy, encodeSafetensors, fromHost } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { createModel, loadPretrained, type ZooOptions } from '../src/index.js';
import { ensureTorchvisionFixtures, fixtureFile } from './fixtures.js';

/** Every zoo model with a torchvision counterpart (and LeNet-5's torch twin), as torch.save files. */
const PTH_MODELS = [
  'lenet5',
  'alexnet',
  'vgg11',
  'vgg13',
  'vgg16',
  'vgg19',
  'vgg11-bn',
  'vgg13-bn',
  'vgg16-bn',
  'vgg19-bn',
  'resnet18',
  'resnet34',
  'resnet50',
  'resnet101',
  'resnet152',
  'googlenet',
  'googlenet-tv',
  'inception-v3',
];
const { manifest, reason } = ensureTorchvisionFixtures(PTH_MODELS);
if (!manifest) console.warn(`SKIPPING .pth parity tests: ${reason}`);

beforeAll(async () => {
  await wasmBackend().init();
});

/** Largest |a - b| relative to the largest |b| (the fixtures scale logits to max |y| = 4). */
function relativeError(got: Float32Array, want: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return worst / scale;
}

describe.skipIf(!manifest)('loadPretrained(.pth) gives torchvision logits (eval mode, max |Δ| ≤ 1e-4 × max |y|)', () => {
  it.each(PTH_MODELS)('%s', async (name) => {
    const spec = manifest!.models[name];
    const before = tf.memory().numTensors;
    const model = createModel(spec.model ?? name, { ...(spec.options as ZooOptions), numClasses: spec.numClasses, inChannels: spec.input[0], skipInit: true });
    try {
      const result = await loadPretrained(model, fixtureFile(`${name}.pth`));
      expect(result.format).toBe('pth');
      expect(result.problems).toEqual([]);
      model.eval();
      const got = tf.tidy(() => {
        const x = tf.transpose(fromHost(decodeNpy(new Uint8Array(readFileSync(fixtureFile(`${name}.input.npy`))))), [0, 2, 3, 1]);
        return model.forward(x).dataSync() as Float32Array;
      });
      const want = decodeNpy(new Uint8Array(readFileSync(fixtureFile(`${name}.logits.npy`)))).data as Float32Array;
      expect(got.length).toBe(want.length);
      expect(relativeError(got, want)).toBeLessThanOrEqual(1e-4);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);
});
