import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, KilnError, defaultRng, manualSeed } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, fashionMnist, type Batch } from '@kiln/data';
import { Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Module, binaryCrossEntropyWithLogits, type Tensor } from '@kiln/layers';
import { Adam, SGD, type Optimizer } from '@kiln/optim';
import { ModelCheckpoint, Trainer, TrainingModule, type OptimizerConfig, type StepOutput } from '../src/index.js';
import { loaders, tinyModule, weights } from './helpers.js';

const LATENT = 16;

/** A generator and a discriminator under one module, so the model's state dict holds both. */
class Gan extends Module {
  readonly generator = this.registerModule('generator', new Sequential(new Linear({ inFeatures: LATENT, outFeatures: 64 }), new ReLU(), new Linear({ inFeatures: 64, outFeatures: 784 }), new Sigmoid()));
  readonly discriminator = this.registerModule('discriminator', new Sequential(new Flatten(), new Linear({ inFeatures: 784, outFeatures: 64 }), new LeakyReLU(0.2), new Linear({ inFeatures: 64, outFeatures: 1 })));
  forward(z: Tensor): Tensor {
    return this.generator.forward(z);
  }
}

/**
 * The classic alternating GAN update (Goodfellow et al., 2014, with the non-saturating generator
 * loss): one discriminator step on real and generated images, then one generator step.
 */
class GanModule extends TrainingModule {
  readonly model = new Gan();
  override automaticOptimization = false;
  steps = { d: 0, g: 0 };

  async trainingStep(batch: Batch): Promise<StepOutput> {
    const [optD, optG] = this.optimizers();
    const n = batch.x.shape[0];
    const real = tf.reshape(batch.x, [n, 784]);
    // Noise from Kiln's seeded generator (saved in checkpoints), so a resumed run draws the same.
    const z = tf.randomNormal([n, LATENT], 0, 1, 'float32', defaultRng().seed());
    const ones = tf.ones([n, 1]);
    const zeros = tf.zeros([n, 1]);
    const dVars = this.model.discriminator.trainableVariables();
    const gVars = this.model.generator.trainableVariables();
    const d = await this.manualBackward(() => {
      const fake = this.model.generator.forward(z);
      const lossReal = binaryCrossEntropyWithLogits(this.model.discriminator.forward(real), ones);
      const lossFake = binaryCrossEntropyWithLogits(this.model.discriminator.forward(fake), zeros);
      return tf.mul(tf.add(lossReal, lossFake), 0.5) as tf.Scalar;
    }, dVars);
    await this.stepOptimizer(optD, d.grads);
    this.steps.d++;
    const g = await this.manualBackward(() => binaryCrossEntropyWithLogits(this.model.discriminator.forward(this.model.generator.forward(z)), ones) as tf.Scalar, gVars);
    await this.stepOptimizer(optG, g.grads);
    this.steps.g++;
    return { logs: { d_loss: d.loss, g_loss: g.loss }, batchSize: n };
  }

  configureOptimizers(): OptimizerConfig[] {
    return [
      { optimizer: new Adam(this.model.discriminator.trainableVariables(), { lr: 2e-3, beta1: 0.5 }) },
      { optimizer: new Adam(this.model.generator.trainableVariables(), { lr: 2e-3, beta1: 0.5 }) },
    ];
  }
}

/** Mean pixel of a batch of generated images. */
function generatedMean(m: GanModule): number {
  return tf.tidy(() => tf.mean(m.model.generator.forward(tf.randomNormal([256, LATENT], 0, 1, 'float32', 5))).dataSync()[0]);
}

beforeAll(async () => {
  await wasmBackend().init();
});

describe('manual optimization', () => {
  it('trains a GAN on Fashion-MNIST with two optimizers stepped in trainingStep', { timeout: 120_000 }, async () => {
    const data = (await fashionMnist('train')).take(1024);
    const dataMean = data.x.reduce((a, b) => a + b, 0) / data.x.length;
    manualSeed(0);
    const module = new GanModule();
    const before = Math.abs(generatedMean(module) - dataMean);
    const counts: number[] = [];
    const trainer = new Trainer({ maxEpochs: 8, numSanityValSteps: 0, seed: 0 }, [{ onTrainEpochEnd: () => void counts.push(tf.memory().numTensors) }]);
    await trainer.fit(module, new DataLoader(data, { batchSize: 64, shuffle: true }));
    // 16 batches × 8 epochs: each optimizer stepped once per batch, one trainer step per batch.
    expect(module.steps).toEqual({ d: 128, g: 128 });
    expect(trainer.globalStep).toBe(128);
    const [optD, optG] = module.optimizers();
    expect([optD.stateDict().step, optG.stateDict().step]).toEqual([128, 128]);
    expect(Number.isFinite(trainer.callbackMetrics.train_d_loss)).toBe(true);
    expect(Number.isFinite(trainer.callbackMetrics.train_g_loss)).toBe(true);
    // The generator learns the data's overall brightness (an untrained sigmoid head outputs ≈ 0.5).
    const after = Math.abs(generatedMean(module) - dataMean);
    expect(after).toBeLessThan(before / 2);
    // Optimizer slots are created in the first steps; from then on the tensor count is flat.
    expect(new Set(counts).size).toBe(1);
    optD.dispose();
    optG.dispose();
    module.model.dispose();
  });

  it('resumes a two-optimizer run exactly', { timeout: 120_000 }, async () => {
    const data = (await fashionMnist('train')).take(256);
    const run = async (maxEpochs: number, ckpt?: string, dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-gan-'))) => {
      manualSeed(ckpt ? 99 : 0);
      const module = new GanModule();
      const trainer = new Trainer({ maxEpochs, numSanityValSteps: 0, seed: 0 }, [new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 })]);
      await trainer.fit(module, new DataLoader(data, { batchSize: 64, shuffle: true }), undefined, ckpt);
      const w = weights(module as never);
      for (const o of module.optimizers()) o.dispose();
      module.model.dispose();
      return { w, dir };
    };
    const full = await run(3);
    const first = await run(2);
    const resumed = await run(3, path.join(first.dir, 'last.ckpt'));
    for (const k of Object.keys(full.w)) expect(Array.from(resumed.w[k])).toEqual(Array.from(full.w[k]));
  });

  it('refuses what cannot work, with errors that say what to do', async () => {
    class TwoAuto extends GanModule {
      override automaticOptimization = true;
    }
    const t = new Trainer({ maxEpochs: 1, numSanityValSteps: 0 });
    const { train } = loaders(32, 16, 16);
    await expect(t.fit(new TwoAuto(), train)).rejects.toThrow(ConfigError);
    await expect(t.fit(new TwoAuto(), train)).rejects.toThrow(/automaticOptimization = false/);
    const asyncAuto = tinyModule();
    const step = asyncAuto.trainingStep.bind(asyncAuto);
    (asyncAuto as unknown as { trainingStep: (b: Batch) => Promise<StepOutput> }).trainingStep = async (b) => step(b);
    await expect(new Trainer({ maxEpochs: 1, numSanityValSteps: 0 }).fit(asyncAuto, train)).rejects.toThrow(/automaticOptimization = false/);
    expect(() => new GanModule().optimizers()).toThrow(KilnError);
  });
});

describe('overridable steps in automatic optimization', () => {
  it('optimizerStep and configureGradientClipping are called, and this.trainer is set in module hooks', async () => {
    const calls: string[] = [];
    const module = tinyModule();
    let epochSeen = -1;
    Object.assign(module, {
      optimizerStep(this: TrainingModule, optimizer: Optimizer, grads: tf.NamedTensorMap) {
        calls.push('step');
        optimizer.step(grads);
      },
      configureGradientClipping(this: TrainingModule, grads: tf.NamedTensorMap, clipVal: number | undefined) {
        calls.push(`clip:${clipVal}`);
        return grads;
      },
      onTrainEpochEnd(this: TrainingModule) {
        epochSeen = this.trainer!.currentEpoch;
      },
    });
    const { train } = loaders(32, 16, 16);
    const trainer = new Trainer({ maxEpochs: 2, numSanityValSteps: 0, gradientClipVal: 0.5 });
    await trainer.fit(module, train);
    expect(calls).toEqual(['clip:0.5', 'step', 'clip:0.5', 'step', 'clip:0.5', 'step', 'clip:0.5', 'step']);
    expect(epochSeen).toBe(1);
    expect(module.trainer).toBe(trainer);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });

  it('SGD through an overridden optimizerStep matches plain SGD', async () => {
    const run = async (override: boolean) => {
      const module = tinyModule();
      module.configureOptimizers = () => ({ optimizer: new SGD(module.model.trainableVariables(), { lr: 0.1 }) });
      if (override) Object.assign(module, { optimizerStep: (o: Optimizer, g: tf.NamedTensorMap) => o.step(g) });
      const { train } = loaders(32, 16, 16);
      const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, seed: 0 });
      await trainer.fit(module, train);
      const w = weights(module);
      trainer.optimizerConfig!.optimizer.dispose();
      module.model.dispose();
      return w;
    };
    const [a, b] = [await run(false), await run(true)];
    for (const k of Object.keys(a)) expect(Array.from(b[k])).toEqual(Array.from(a[k]));
  });
});
