import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { MODELS, createModel, type ZooOptions } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

/** Published parameter counts (torchvision's models; LeNet-5 from LeCun et al. 1998 with a linear output). */
const COUNTS: [string, ZooOptions, number][] = [
  ['lenet5-classic', {}, 60_850],
  ['lenet5', {}, 61_706],
  ['alexnet', {}, 61_100_840],
  ['vgg11', {}, 132_863_336],
  ['vgg13', {}, 133_047_848],
  ['vgg16', {}, 138_357_544],
  ['vgg19', {}, 143_667_240],
  ['vgg11-bn', {}, 132_868_840],
  ['vgg16-bn', {}, 138_365_992],
  ['resnet18', {}, 11_689_512],
  ['resnet34', {}, 21_797_672],
  ['resnet50', {}, 25_557_032],
  ['resnet101', {}, 44_549_160],
  ['resnet152', {}, 60_192_808],
  ['googlenet', {}, 6_624_904],
  ['googlenet', { auxLogits: true }, 13_004_888],
  ['inception-v3', {}, 23_834_568],
  ['inception-v3', { auxLogits: true }, 27_161_264],
];

describe('zoo parameter counts', () => {
  it.each(COUNTS)('%s %j has the reference parameter count', (name, opts, expected) => {
    const before = tf.memory().numTensors;
    // skipInit builds the same modules with zero-filled tensors (random fills of 100M+ values take seconds).
    const model = createModel(name, { ...opts, skipInit: true });
    try {
      expect(model.numParameters()).toBe(expected);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('numClasses and inChannels change exactly the head and the stem', () => {
    // ResNet-18: fc is 512·n + n, conv1 is 7·7·c·64.
    const a = createModel('resnet18', { numClasses: 10, inChannels: 1, skipInit: true });
    expect(a.numParameters()).toBe(11_689_512 - (512 * 1000 + 1000) + (512 * 10 + 10) - 7 * 7 * 2 * 64);
    a.dispose();
    // Small-input stem: 3×3 conv instead of 7×7, no max-pool.
    const b = createModel('resnet18', { smallInput: true, skipInit: true });
    expect(b.numParameters()).toBe(11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64);
    expect(b.namedModules().some(([p]) => p === 'maxpool')).toBe(false);
    b.dispose();
  });

  // The models test/torchvision-weights.test.ts does not run (it checks the others' values).
  it.each(['lenet5-classic', 'inception-v3', 'resnet34'])('%s runs on its smallest input with the right output shape and no leak', (name) => {
    const entry = MODELS[name];
    // Zero weights keep this a shape check.
    const model = createModel(name, { numClasses: 7, skipInit: true }).eval();
    const s = entry.minInputSize;
    const x = tf.randomUniform([2, s, s, entry.inputShape[2]]);
    const before = tf.memory().numTensors;
    const y = model.forward(x);
    expect(y.shape).toEqual([2, 7]);
    expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(before - 1);
    model.dispose();
  }, 30_000);

  it("AlexNet's lrn option puts the paper's normalisation after the first two ReLUs", () => {
    const model = createModel('alexnet', { lrn: true, numClasses: 3, skipInit: true });
    expect(model.getModule('features').children().map(([, m]) => m.typeName).slice(0, 8)).toEqual(['Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d', 'Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d']);
    expect(model.numParameters()).toBe(61_100_840 - 4097 * 1000 + 4097 * 3);
    model.dispose();
  });

  it('skipInit only changes the initial values, not the structure', () => {
    const a = createModel('googlenet', { numClasses: 10, rng: new Rng(1) });
    const b = createModel('googlenet', { numClasses: 10, skipInit: true });
    expect(b.namedParameters().map(([n, p]) => [n, p.shape])).toEqual(a.namedParameters().map(([n, p]) => [n, p.shape]));
    for (const key of ['inception3a.branch2.1.conv.weight', 'fc.weight']) {
      expect(tf.max(tf.abs(b.stateDict()[key])).dataSync()[0], key).toBe(0);
      expect(tf.max(tf.abs(a.stateDict()[key])).dataSync()[0], key).toBeGreaterThan(0);
    }
    a.dispose();
    b.dispose();
  });

  it('names an unknown model and lists the known ones', () => {
    expect(() => createModel('resnet19')).toThrow(ConfigError);
    expect(() => createModel('resnet19')).toThrow(/resnet18, resnet34/);
  });
});
