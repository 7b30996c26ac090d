import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L, backends, core, checkAgainstTorch, checkGradient, checkParameterGradients, expectClose, fixtures, raw, runLayerContractTest, seeded, tf, toChannelsLast, useWasm, type Tensor } from './support.js';

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

