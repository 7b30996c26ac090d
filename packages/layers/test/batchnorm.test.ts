import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchNorm, Module as LayerModule, Sequential } from '../src/index.js';
import { L, backends, core, checkAgainstTorch, checkGradient, checkParameterGradients, expectClose, fixtures, raw, runLayerContractTest, seeded, tf, toChannelsLast, useWasm, type Scalar, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

// Training mode runs the backend's fused kernels when it has them (oneDNN on the default backend),
// else the composite op with the closed-form gradient: both are checked against PyTorch.
describe.each([true, false])('BatchNorm matches PyTorch in training (batch statistics, running update) and eval (oneDNN kernels: %s)', (dnnl) => {
  beforeAll(() => backends.registerWasmTrainingKernels({ dnnl }));
  afterAll(() => backends.registerWasmTrainingKernels());
  for (const c of fixtures.batchNorm) {
    it(c.name, () => {
      const bn = new L.BatchNorm({ numFeatures: 3, momentum: c.momentum, eps: c.eps });
      bn.buffer('running_mean').assign(tf.tidy(() => raw(c.train.runningMean0)));
      bn.buffer('running_var').assign(tf.tidy(() => raw(c.train.runningVar0)));
      bn.train();
      // The forward used for gradients runs twice (value + grads), so reset the statistics after.
      checkAgainstTorch(bn, c.train, 'train');
      bn.buffer('running_mean').assign(tf.tidy(() => raw(c.train.runningMean0)));
      bn.buffer('running_var').assign(tf.tidy(() => raw(c.train.runningVar0)));
      const x = toChannelsLast(c.train.x);
      tf.dispose(bn.forward(x));
      const rm = raw(c.train.runningMean1);
      const rv = raw(c.train.runningVar1);
      expectClose(bn.buffer('running_mean'), rm, 1e-5, 'running mean');
      expectClose(bn.buffer('running_var'), rv, 1e-5, 'running var (unbiased)');
      expect(bn.buffer('num_batches_tracked').dataSync()[0]).toBeGreaterThan(0);
      bn.eval();
      checkAgainstTorch(bn, c.eval, 'eval');
      tf.dispose([x, rm, rv]);
      bn.dispose();
    });
  }

  it('training-mode gradients (through the batch statistics) agree with finite differences', () => {
    const bn = new L.BatchNorm2d({ numFeatures: 3, eps: 1e-3 }).train();
    const x = seeded([4, 2, 2, 3]);
    checkGradient((v) => bn.forward(v), x, { eps: 1e-2, tol: 3e-3 });
    checkParameterGradients(bn, x);
    x.dispose();
    bn.dispose();
  });

  it('eval mode does not touch the running statistics', () => {
    const bn = new L.BatchNorm2d(2).eval();
    const x = seeded([2, 3, 3, 2]);
    tf.dispose(bn.forward(x));
    expect(Array.from(bn.buffer('running_mean').dataSync())).toEqual([0, 0]);
    x.dispose();
    bn.dispose();
  });

  it('training mode runs the fused batch-norm kernels of a backend that registers them', async () => {
    const { BATCH_NORM_TRAINING_KERNEL, BATCH_NORM_TRAINING_GRAD_KERNEL } = core;
    const fused = tf.getKernel(BATCH_NORM_TRAINING_KERNEL, tf.getBackend()) != null;
    const bn = new L.BatchNorm2d(3).train();
    const x = seeded([4, 2, 2, 3]);
    const info = await tf.profile(() => {
      const g = tf.grads((v: Tensor) => tf.sum(tf.square(bn.forward(v))))([x]);
      tf.dispose(g);
    });
    const names = info.kernels.map((k) => k.name);
    if (fused) expect(names).toEqual(expect.arrayContaining([BATCH_NORM_TRAINING_KERNEL, BATCH_NORM_TRAINING_GRAD_KERNEL]));
    else expect(names).not.toContain(BATCH_NORM_TRAINING_KERNEL);
    // With oneDNN built (CI requires it) the default backend offers them exactly while it is on.
    if (process.env.KILN_REQUIRE_DNNL === '1') expect(fused).toBe(dnnl);
    x.dispose();
    bn.dispose();
  });

  const buffers = ['running_mean', 'running_var', 'num_batches_tracked'];
  it('BatchNorm2d contract', () => runLayerContractTest({ make: () => new L.BatchNorm2d(3), input: [4, 2, 2, 3], output: [4, 2, 2, 3], params: 6, buffers, badInput: [4, 2, 2, 2] }));
  it('BatchNorm1d contract', () => runLayerContractTest({ make: () => new L.BatchNorm1d({ numFeatures: 5, affine: false }), input: [6, 5], output: [6, 5], params: 0, buffers, badInput: [6, 4] }));
});


/** A conv backbone with batch norm and a head with its own batch norm, for the freezing tests. */
function backboneAndHead(): Sequential {
  const rng = new core.Rng(11);
  const backbone = new L.Sequential(new L.Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, padding: 1, rng }), new L.BatchNorm2d(4), new L.ReLU(), new L.GlobalAvgPool2d());
  const head = new L.Sequential(new L.Linear({ inFeatures: 4, outFeatures: 3, rng }), new L.BatchNorm1d(3));
  return new L.Sequential(backbone, head);
}

/** `steps` plain gradient steps (lr 0.1) on a fixed regression target, over the trainable variables only. */
function trainSteps(model: LayerModule, steps: number, inputShape = [6, 4, 4, 2]): void {
  model.train();
  for (let i = 0; i < steps; i++) {
    const x = seeded(inputShape, 3 + i);
    const vars = model.trainableVariables();
    const { grads, value } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(model.forward(x), 1))) as Scalar, vars);
    tf.tidy(() => {
      for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.1)));
    });
    tf.dispose([x, value, ...Object.values(grads)]);
  }
}

function stats(model: LayerModule, path: string): Float32Array[] {
  const bn = model.getModule(path);
  return ['running_mean', 'running_var'].map((b) => (bn.buffer(b).dataSync() as Float32Array).slice());
}

describe('freezing keeps batch-norm statistics (Lightning BaseFinetuning, train_bn=False)', () => {
  it('a frozen backbone keeps its running statistics bit for bit while the head’s batch norm keeps learning', () => {
    const model = backboneAndHead();
    // Give the backbone non-trivial statistics first, as a pretrained one has.
    trainSteps(model, 2);
    const backbone0 = stats(model, '0.1');
    const head0 = stats(model, '1.1');
    const weight0 = (model.getModule('0.1').param('weight').variable.dataSync() as Float32Array).slice();
    model.freeze('0');
    expect((model.getModule('0.1') as BatchNorm).statisticsFrozen).toBe(true);
    trainSteps(model, 3);
    expect(stats(model, '0.1')).toEqual(backbone0);
    expect(model.getModule('0.1').buffer('num_batches_tracked').dataSync()[0]).toBe(2);
    expect(model.getModule('0.1').param('weight').variable.dataSync()).toEqual(weight0);
    const head1 = stats(model, '1.1');
    expect(head1[0]).not.toEqual(head0[0]);
    expect(head1[1]).not.toEqual(head0[1]);
    // Unfrozen, the statistics move again.
    model.unfreeze('0');
    trainSteps(model, 1);
    expect(stats(model, '0.1')[0]).not.toEqual(backbone0[0]);
    model.dispose();
  });

  it('a frozen batch norm in training mode computes exactly what it computes in eval mode', () => {
    const bn = new L.BatchNorm2d(3);
    const x = seeded([4, 2, 2, 3], 5);
    trainSteps(new L.Sequential(bn), 1, [4, 2, 2, 3]);
    bn.freeze();
    const train = bn.train().forward(x);
    const evald = bn.eval().forward(x);
    expect(train.dataSync()).toEqual(evald.dataSync());
    tf.dispose([x, train, evald]);
    bn.dispose();
  });

  it('trainBn: true leaves batch-norm layers training (parameters and statistics)', () => {
    const model = backboneAndHead();
    model.freeze('0', { trainBn: true });
    const bn = model.getModule('0.1') as BatchNorm;
    expect(bn.statisticsFrozen).toBe(false);
    expect(bn.parameters().every((p) => p.trainable)).toBe(true);
    expect(model.getModule('0.0').parameters().every((p) => !p.trainable)).toBe(true);
    const before = stats(model, '0.1');
    trainSteps(model, 1);
    expect(stats(model, '0.1')[0]).not.toEqual(before[0]);
    model.dispose();
  });

  it('a batch norm whose scale and shift were made non-trainable by hand is frozen too; one without parameters is not', () => {
    const bn = new L.BatchNorm2d(3);
    for (const p of bn.parameters()) p.trainable = false;
    expect(bn.statisticsFrozen).toBe(true);
    bn.weight!.trainable = true;
    expect(bn.statisticsFrozen).toBe(false);
    bn.dispose();
    const plain = new L.BatchNorm2d({ numFeatures: 3, affine: false });
    expect(plain.statisticsFrozen).toBe(false);
    plain.freeze();
    expect(plain.statisticsFrozen).toBe(true);
    plain.unfreeze();
    expect(plain.statisticsFrozen).toBe(false);
    plain.dispose();
  });
});
