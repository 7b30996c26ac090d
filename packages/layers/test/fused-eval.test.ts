import { beforeAll, describe, expect, it } from 'vitest';
import { LINEAR_KERNEL, manualSeed, tf } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
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

/** Runs `fn` on tfjs's pure-JS reference backend, then returns to the previous one. */
async function onCpu<T>(fn: () => T): Promise<T> {
  const prev = tf.getBackend();
  await cpuBackend().init();
  try {
    return fn();
  } finally {
    await tf.setBackend(prev);
  }
}

const kernelsRun = async (f: () => tf.Tensor) => {
  const info = await tf.profile(() => f());
  return info.kernelNames;
};

describe('fusion of bias and ReLU', () => {
  for (const padding of ['same', 'valid', 1] as const) {
    it(`gives the unfused outputs of the reference backend in both modes, padding ${padding}`, async () => {
      const m = net(padding);
      const size = padding === 'valid' ? 10 : 8;
      const x = tf.randomNormal([3, size, size, 2], 0, 1, 'float32', 11);
      const fused = [m.train().forward(x), m.eval().forward(x)];
      // tfjs's pure-JS kernels, each ReLU its own layer: an implementation independent of WASM and oneDNN.
      const want = await onCpu(() => Array.from(withoutFusion(() => m.forward(x)).dataSync()));
      for (const y of fused) {
        expect(y.shape[0]).toBe(3);
        const got = y.dataSync();
        expect(got.length).toBe(want.length);
        expect(Math.max(...want.map((v, i) => Math.abs(v - got[i])))).toBeLessThan(1e-5);
      }
      tf.dispose([x, ...fused]);
      m.dispose();
    });
  }

  it('runs fused kernels in eval and training mode, and leaks nothing', async () => {
    const m = net('same');
    const x = tf.randomNormal([2, 8, 8, 2], 0, 1, 'float32', 3);
    const evalKernels = await kernelsRun(() => m.eval().forward(x));
    expect(evalKernels).toContain('FusedConv2D');
    // The dense layers: @kiln/core's LINEAR_KERNEL where the backend has it (Kiln's WASM backend does), else tfjs's.
    expect(evalKernels).toContain(tf.getKernel(LINEAR_KERNEL, tf.getBackend()) ? LINEAR_KERNEL : '_FusedMatMul');
    expect(evalKernels).not.toContain('Relu');
    const unfusedEval = await kernelsRun(() => withoutFusion(() => m.forward(x)));
    // Bias stays fused into the conv, but the ReLU runs as its own layer (summaries see it).
    expect(unfusedEval).toContain('Relu');
    expect(await kernelsRun(() => m.forward(x))).not.toContain('Relu');
    // Training fuses the same way (its gradients: fused-training.test.ts).
    const trainKernels = await kernelsRun(() => m.train().forward(x));
    expect(trainKernels).toContain('FusedConv2D');
    expect(trainKernels).not.toContain('Relu');
    m.eval();
    const before = tf.memory().numTensors;
    tf.dispose(m.forward(x));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });
});
