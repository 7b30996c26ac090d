import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed, tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, withoutFusion } from '@kiln/layers';

beforeAll(async () => {
  await wasmBackend().init();
});

function net(padding: 'same' | 'valid' | number): Sequential {
  manualSeed(5);
  return new Sequential(
    new Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, padding }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d({ inChannels: 4, outChannels: 3, kernelSize: 3, stride: 2, padding: 1 }),
    new ReLU(),
    new Flatten(),
    new Linear({ inFeatures: 3 * 2 * 2, outFeatures: 5 }),
    new ReLU(),
    new Linear({ inFeatures: 5, outFeatures: 2 }),
  );
}

const kernelsRun = async (f: () => tf.Tensor) => {
  const info = await tf.profile(() => f());
  return info.kernelNames;
};

describe('eval-mode fusion of bias and ReLU', () => {
  for (const padding of ['same', 'valid', 1] as const) {
    it(`gives the training-mode (unfused) outputs, padding ${padding}`, async () => {
      const m = net(padding);
      const size = padding === 'valid' ? 10 : 8;
      const x = tf.randomNormal([3, size, size, 2], 0, 1, 'float32', 11);
      const unfused = m.train().forward(x);
      const fused = m.eval().forward(x);
      expect(fused.shape).toEqual(unfused.shape);
      const diff = tf.max(tf.abs(tf.sub(fused, unfused))).dataSync()[0];
      expect(diff).toBeLessThan(1e-5);
      tf.dispose([x, unfused, fused]);
      m.dispose();
    });
  }

  it('runs fused kernels in eval mode only, and leaks nothing', async () => {
    const m = net('same');
    const x = tf.randomNormal([2, 8, 8, 2], 0, 1, 'float32', 3);
    const evalKernels = await kernelsRun(() => m.eval().forward(x));
    expect(evalKernels).toContain('FusedConv2D');
    expect(evalKernels).toContain('_FusedMatMul');
    expect(evalKernels).not.toContain('Relu');
    const unfusedEval = await kernelsRun(() => withoutFusion(() => m.forward(x)));
    // Bias stays fused into the conv, but the ReLU runs as its own layer (summaries see it).
    expect(unfusedEval).toContain('Relu');
    expect(await kernelsRun(() => m.forward(x))).not.toContain('Relu');
    const trainKernels = await kernelsRun(() => m.train().forward(x));
    expect(trainKernels).not.toContain('FusedConv2D');
    expect(trainKernels).toContain('Relu');
    m.eval();
    const before = tf.memory().numTensors;
    tf.dispose(m.forward(x));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });
});
