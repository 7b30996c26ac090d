import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { Conv2d } from '@kiln/layers';
import { MODELS, chooseVariant, createModel, type ZooModel, type ZooOptions } from '../src/index.js';

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
    const s = entry.minInputSize;
    const model = createModel(name, { numClasses: 7, inputShape: [s, s, entry.inputShape[2]], skipInit: true }).eval();
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

/** What each model does with a 28×28 grey image: the variant it builds, or the minimum it asks for. */
const ON_28: Record<string, { variant: 'standard' | 'small-input' } | { min: number }> = {
  lenet5: { variant: 'standard' },
  'lenet5-classic': { variant: 'standard' },
  alexnet: { min: 63 },
  vgg11: { variant: 'small-input' },
  vgg13: { variant: 'small-input' },
  vgg16: { variant: 'small-input' },
  vgg19: { variant: 'small-input' },
  'vgg11-bn': { variant: 'small-input' },
  'vgg13-bn': { variant: 'small-input' },
  'vgg16-bn': { variant: 'small-input' },
  'vgg19-bn': { variant: 'small-input' },
  resnet18: { variant: 'small-input' },
  resnet34: { variant: 'small-input' },
  resnet50: { variant: 'small-input' },
  resnet101: { variant: 'small-input' },
  resnet152: { variant: 'small-input' },
  googlenet: { variant: 'standard' },
  'inception-v3': { min: 75 },
};

/** The first convolution's kernel [kh, kw, in, out] (every zoo stem is a Conv2d). */
function stem(model: ZooModel): Conv2d {
  const conv = model.namedModules().find(([, m]) => m instanceof Conv2d);
  if (!conv) throw new Error(`${model.typeName} has no Conv2d`);
  return conv[1] as Conv2d;
}

describe('zoo models adapt to the input shape', () => {
  it('the table covers every zoo model', () => {
    expect(Object.keys(ON_28).sort()).toEqual(Object.keys(MODELS).sort());
  });

  it.each(Object.keys(ON_28))('%s on [1, 28, 28, 1] builds and runs, or refuses with a ConfigError naming the size and minimum', (name) => {
    const want = ON_28[name];
    const options: ZooOptions = { inputShape: [28, 28, 1], numClasses: 5, skipInit: true };
    if ('min' in want) {
      let err: unknown;
      try {
        createModel(name, options).dispose();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toContain(name);
      expect(msg).toContain('28×28');
      expect(msg).toContain(`at least ${want.min}×${want.min}`);
      expect(msg).toContain('--image-size');
      // The minimum it names is one the model really runs at.
      const model = createModel(name, { ...options, inputShape: [want.min, want.min, 1] }).eval();
      const y = tf.tidy(() => model.forward(tf.zeros([1, want.min, want.min, 1])));
      expect(y.shape).toEqual([1, 5]);
      y.dispose();
      model.dispose();
      return;
    }
    expect(chooseVariant(name, options).variant).toBe(want.variant);
    const before = tf.memory().numTensors;
    const model = createModel(name, options);
    expect(stem(model).config.inChannels).toBe(1);
    const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 3);
    for (const mode of ['train', 'eval'] as const) {
      model.train(mode === 'train');
      const y = model.forward(x);
      expect(y.shape, mode).toEqual([1, 5]);
      expect(Array.from(y.dataSync()).every(Number.isFinite), mode).toBe(true);
      y.dispose();
    }
    x.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it.each([
    ['lenet5', 32],
    ['lenet5-classic', 32],
    ['vgg11', 32],
    ['resnet18', 32],
    ['googlenet', 32],
  ] as const)('%s takes 1 and 3 input channels from the input shape', (name, size) => {
    for (const c of [1, 3]) {
      // Zero weights: random fills of VGG's 130M values take tens of seconds, and this checks shapes.
      const model = createModel(name, { inputShape: [size, size, c], numClasses: 4, skipInit: true });
      expect(stem(model).weight.shape[2]).toBe(c);
      const y = tf.tidy(() => model.forward(tf.randomUniform([2, size, size, c], 0, 1, 'float32', 7)));
      expect(y.shape).toEqual([2, 4]);
      y.dispose();
      model.dispose();
    }
  }, 60_000);

  it('ResNet uses the small stem below 64 px and torchvision’s at 64 px and up; an explicit smallInput wins', () => {
    const small = chooseVariant('resnet18', { inputShape: [63, 63, 3] });
    expect(small.variant).toBe('small-input');
    expect(small.options.smallInput).toBe(true);
    expect(small.reason).toMatch(/63×63 is below 64 px/);
    const big = chooseVariant('resnet18', { inputShape: [64, 64, 3] });
    expect(big.variant).toBe('standard');
    expect(big.options.smallInput).toBeUndefined();
    expect(chooseVariant('resnet18', { inputShape: [28, 28, 3], smallInput: false }).variant).toBe('standard');
    const model = createModel('resnet18', { inputShape: [32, 32, 3], skipInit: true });
    expect(stem(model).config.kernelSize).toEqual([3, 3]);
    expect(model.namedModules().some(([p]) => p === 'maxpool')).toBe(false);
    model.dispose();
  });

  it('VGG below 32 px leaves out the fifth max-pool only: same parameters, same layer indices', () => {
    const std = createModel('vgg11', { numClasses: 3, skipInit: true });
    const small = createModel('vgg11', { inputShape: [20, 20, 3], numClasses: 3, skipInit: true });
    expect(small.namedParameters().map(([n, p]) => [n, p.shape])).toEqual(std.namedParameters().map(([n, p]) => [n, p.shape]));
    const types = (m: ZooModel) => m.getModule('features').children().map(([, c]) => c.typeName);
    expect(types(small)).toEqual(types(std).slice(0, -1));
    expect(types(std).at(-1)).toBe('MaxPool2d');
    std.dispose();
    small.dispose();
    expect(() => createModel('vgg11', { inputShape: [20, 20, 3], smallInput: false })).toThrow(/at least 32×32/);
    expect(() => createModel('vgg11', { inputShape: [15, 15, 3] })).toThrow(/at least 16×16/);
  });

  it('LeNet-5 sizes its first dense layer from the input; LeNet-5 classic takes 28 or 32 px only', () => {
    const model = createModel('lenet5', { inputShape: [32, 32, 1], skipInit: true });
    expect(model.stateDict()['classifier.0.weight'].shape).toEqual([16 * 6 * 6, 120]);
    expect(model.flattenedInputs['classifier.0']).toEqual([16, 6, 6]);
    model.dispose();
    expect(() => createModel('lenet5', { inputShape: [11, 11, 1] })).toThrow(/at least 12×12/);
    expect(() => createModel('lenet5-classic', { inputShape: [64, 64, 1] })).toThrow(/28×28 or 32×32/);
  });

  it('Inception v3 with its auxiliary head needs 299 px; bad shapes and conflicting inChannels are ConfigErrors', () => {
    expect(() => chooseVariant('inception-v3', { inputShape: [150, 150, 3], auxLogits: true })).toThrow(/at least 299×299/);
    expect(chooseVariant('inception-v3', { inputShape: [150, 150, 3] }).variant).toBe('standard');
    expect(() => chooseVariant('resnet18', { inputShape: [32, 32, 1], inChannels: 3 })).toThrow(ConfigError);
    expect(() => chooseVariant('resnet18', { inputShape: [32, 0, 1] as never })).toThrow(ConfigError);
    expect(() => chooseVariant('nope', { inputShape: [32, 32, 1] })).toThrow(/one of: lenet5/);
    // Without an input shape: the model's own, standard layout.
    expect(chooseVariant('resnet50')).toMatchObject({ inputShape: [224, 224, 3], variant: 'standard' });
  });
});
