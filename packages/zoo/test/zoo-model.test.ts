import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, KilnError, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { Linear } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { LeNet5, createModel, parameterGroups } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

describe('fine-tuning a zoo model', () => {
  it('forward is head(features(x)) for every architecture', () => {
    for (const [name, size] of [
      ['lenet5', 28],
      ['lenet5-classic', 32],
      ['resnet18', 32],
      ['googlenet', 32],
    ] as const) {
      const model = createModel(name, { numClasses: 6, rng: new Rng(4) }).eval();
      const x = tf.randomUniform([2, size, size, name.startsWith('lenet') ? 1 : 3], -1, 1, 'float32', 5);
      const [y, f, hf] = tf.tidy(() => {
        const feats = model.features(x);
        return [model.forward(x), feats, model.head().forward(feats)];
      });
      expect(f.shape[1], name).toBe(model.head().config.inFeatures);
      expect(tf.max(tf.abs(tf.sub(y, hf))).dataSync()[0], name).toBeLessThan(1e-6);
      tf.dispose([x, y, f, hf]);
      model.dispose();
    }
    // Seeded initialisation of four models (ResNet-18 and GoogLeNet: 17M parameters) takes seconds
    // on a loaded 2-core machine.
  }, 60_000);

  it('replaceHead swaps in a fresh head for a new number of classes, in a Sequential too', () => {
    const model = new LeNet5({ rng: new Rng(1) });
    const oldHead = model.head();
    const fresh = model.replaceHead(3, { rng: new Rng(2) });
    expect(model.getModule('classifier.4')).toBe(fresh);
    expect(model.classifier.at(4)).toBe(fresh);
    expect(fresh.path).toBe('classifier.4');
    expect(oldHead.weight.variable.isDisposed).toBe(true);
    expect(model.numClasses).toBe(3);
    expect(model.stateDict()['classifier.4.weight'].shape).toEqual([84, 3]);
    const y = model.forward(tf.zeros([1, 28, 28, 1]));
    expect(y.shape).toEqual([1, 3]);
    y.dispose();
    expect(() => model.replaceHead(0)).toThrow(ConfigError);
    model.dispose();

    const resnet = createModel('resnet18', { numClasses: 4, skipInit: true });
    resnet.replaceHead(2);
    expect(resnet.getModule('fc')).toBeInstanceOf(Linear);
    expect(resnet.numClasses).toBe(2);
    resnet.dispose();
  });

  it('freezes and unfreezes by module path; freezeBackbone leaves only the head trainable', () => {
    const model = createModel('resnet18', { numClasses: 10, skipInit: true });
    model.freeze('layer1');
    expect(model.getModule('layer1').parameters().every((p) => !p.trainable)).toBe(true);
    expect(model.getModule('layer2').parameters().every((p) => p.trainable)).toBe(true);
    model.unfreeze('layer1.1');
    expect(model.getModule('layer1.1').parameters().every((p) => p.trainable)).toBe(true);
    expect(model.getModule('layer1.0').parameters().every((p) => !p.trainable)).toBe(true);
    model.freezeBackbone();
    expect(model.numParameters({ trainableOnly: true })).toBe(512 * 10 + 10);
    expect(() => model.freeze('layer9')).toThrow(KilnError);
    expect(() => model.freeze('layer9')).toThrow(/layer1, layer2, layer3, layer4/);
    model.dispose();
  });

  it('a frozen backbone does not move during a training step; the head does', () => {
    const model = new LeNet5({ numClasses: 10, rng: new Rng(3) });
    model.replaceHead(4, { rng: new Rng(4) });
    model.freezeBackbone();
    const before = Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, v.clone()]));
    const opt = new Adam(model.trainableVariables(), { lr: 0.01 });
    const x = tf.randomNormal([8, 28, 28, 1], 0, 1, 'float32', 1);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.forward(x)) as tf.Scalar, model.trainableVariables());
    opt.step(grads);
    for (const [k, v] of Object.entries(model.stateDict())) {
      const moved = tf.max(tf.abs(tf.sub(v, before[k]))).dataSync()[0] > 0;
      expect(moved, k).toBe(k.startsWith('classifier.4.'));
    }
    tf.dispose([x, y, ...Object.values(before), ...Object.values(grads)]);
    opt.dispose();
    model.dispose();
  });
});

describe('a frozen backbone keeps its batch-norm statistics', () => {
  it('ResNet: every backbone running_mean/var is unchanged bit for bit over training steps; with trainBn they move', () => {
    for (const trainBn of [false, true]) {
      const model = createModel('resnet18', { inputShape: [8, 8, 3], numClasses: 4, rng: new Rng(2) });
      model.freezeBackbone({ trainBn });
      const snapshot = () => Object.fromEntries(model.namedBuffers().filter(([k]) => /running_(mean|var)$/.test(k)).map(([k, v]) => [k, (v.dataSync() as Float32Array).slice()]));
      const before = snapshot();
      const opt = new Adam(model.trainableVariables(), { lr: 0.01 });
      model.train();
      for (let i = 0; i < 3; i++) {
        const x = tf.randomNormal([4, 8, 8, 3], 0.5, 2, 'float32', i);
        const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);
        const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.forward(x)) as tf.Scalar, model.trainableVariables());
        opt.step(grads);
        tf.dispose([x, y, value, ...Object.values(grads)]);
      }
      const after = snapshot();
      expect(Object.keys(after).length).toBe(2 * 20);
      for (const k of Object.keys(before)) {
        if (trainBn) expect(after[k], k).not.toEqual(before[k]);
        else expect(after[k], k).toEqual(before[k]);
      }
      opt.dispose();
      model.dispose();
    }
  }, 60_000);
});

describe('parameterGroups (discriminative learning rates)', () => {
  it('groups parameters by module path, first match wins, the rest go to "rest"', () => {
    const model = createModel('resnet18', { numClasses: 10, skipInit: true });
    const groups = parameterGroups(model, [
      { path: 'fc', lr: 1e-3 },
      { path: ['layer3', 'layer4'], name: 'late', lr: 1e-4, weightDecay: 0 },
      { path: 'layer4.1', lr: 5 },
    ]);
    expect(groups.map((g) => [g.name, g.lr, g.params.length])).toEqual([
      ['fc', 1e-3, 2],
      ['late', 1e-4, model.getModule('layer3').parameters().length + model.getModule('layer4').parameters().length],
      ['rest', undefined, model.parameters().length - 2 - model.getModule('layer3').parameters().length - model.getModule('layer4').parameters().length],
    ]);
    expect(groups[1].weightDecay).toBe(0);
    const all = groups.flatMap((g) => g.params);
    expect(new Set(all).size).toBe(model.parameters().length);
    // The optimizer accepts them as they are.
    const opt = new Adam(groups, { lr: 0.1 });
    expect(opt.paramGroups.map((g) => g.hyper.lr)).toEqual([1e-3, 1e-4, 0.1]);
    opt.dispose();
    model.freezeBackbone();
    expect(parameterGroups(model, [{ path: 'fc' }]).map((g) => g.name)).toEqual(['fc']);
    expect(() => parameterGroups(model, [{ path: 'layer7' }])).toThrow(/no module at 'layer7'/);
    model.dispose();
  });
});
