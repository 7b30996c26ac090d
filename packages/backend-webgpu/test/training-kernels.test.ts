/**
 * Every kernel the zoo's layers use in training, forward and backward, on WebGPU against tfjs's
 * reference CPU backend. Each case builds the same network on both backends (same seed, same
 * input), computes the loss and every parameter gradient, and compares.
 *
 * Tolerance: 1e-3 relative to max(1, |reference|). WebGPU sums in a different order and SwiftShader
 * evaluates transcendental functions with its own approximations; agreement is typically 1e-6.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { core, cpuPkg, host, layers, maxRelativeError, requireWebGpu, skipWhenOptedOut, webGpuOptOut, tf, webgpu, zoo, type HostTensor } from './webgpu-test-env.js';

const TOLERANCE = 1e-3;
type Module = import('@kiln/layers').Module;

/** Loss and gradients of `build()`'s network on the active backend, read back to the host. */
async function lossAndGrads(build: () => Module, x: HostTensor, labels: number[], mode: 'train' | 'eval' = 'train'): Promise<{ loss: number; grads: Map<string, HostTensor> }> {
  core.manualSeed(7);
  const model = build();
  if (mode === 'train') model.train();
  else model.eval();
  const xs = tf.tensor(x.values, x.shape);
  const ys = tf.tensor1d(labels, 'int32');
  const named = model.namedParameters().filter(([, p]) => p.variable.trainable);
  const { value, grads } = tf.variableGrads(() => layers.crossEntropy(model.forward(xs), ys) as import('@kiln/core').Tensor as never, named.map(([, p]) => p.variable));
  const out = new Map<string, HostTensor>();
  for (const [n, p] of named) out.set(n, await host(grads[p.variable.name]));
  const loss = (await value.data())[0];
  tf.dispose([xs, ys, value, ...Object.values(grads)]);
  model.dispose();
  return { loss, grads: out };
}

function input(shape: number[], seed: number): HostTensor {
  let s = seed;
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    values[i] = s / 2 ** 31 - 1;
  }
  return { shape, values };
}

const L = layers;

/** Inception-style branches joined by concatenation, then a residual add (GoogLeNet, ResNet). */
class BranchAndResidual extends layers.Module {
  readonly a = this.registerModule('a', new L.Conv2d({ inChannels: 4, outChannels: 2, kernelSize: 1 }));
  readonly b = this.registerModule('b', new L.Conv2d({ inChannels: 4, outChannels: 2, kernelSize: [1, 3], padding: [0, 1] }));
  readonly pool = this.registerModule('pool', new L.AvgPool2d({ kernelSize: 3, stride: 1, padding: 1 }));
  readonly head = this.registerModule('head', new L.Sequential(new L.GlobalAvgPool2d(), new L.Linear({ inFeatures: 4, outFeatures: 10 })));
  forward(x: import('@kiln/core').Tensor): import('@kiln/core').Tensor {
    const joined = tf.concat([this.a.forward(x), this.b.forward(this.pool.forward(x))], -1);
    return this.head.forward(tf.relu(tf.add(joined, x)));
  }
}
/** Small networks that together use every layer the zoo is built from. */
const CASES: [string, () => Module, number[]][] = [
  ['conv (same, stride 1) + relu + max pool + linear', () => new L.Sequential(new L.Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, padding: 'same' }), new L.ReLU(), new L.MaxPool2d(2), new L.Flatten(), new L.Linear({ inFeatures: 4 * 4 * 4, outFeatures: 10 })), [3, 8, 8, 2]],
  // (No dilated convolution: tfjs-core has no gradient for it on any backend.)
  ['strided, padded conv + avg pool + sigmoid', () => new L.Sequential(new L.Conv2d({ inChannels: 3, outChannels: 5, kernelSize: 3, stride: 2, padding: 1 }), new L.Sigmoid(), new L.Conv2d({ inChannels: 5, outChannels: 4, kernelSize: 3, padding: 1 }), new L.AvgPool2d(2), new L.Flatten(), new L.Linear({ inFeatures: 4 * 2 * 2, outFeatures: 10 })), [2, 9, 9, 3]],
  ['grouped and depthwise conv + relu6 + tanh', () => new L.Sequential(new L.Conv2d({ inChannels: 4, outChannels: 4, kernelSize: 3, groups: 4, padding: 1 }), new L.ReLU6(), new L.Conv2d({ inChannels: 4, outChannels: 6, kernelSize: 1, groups: 2 }), new L.Tanh(), new L.GlobalAvgPool2d(), new L.Linear({ inFeatures: 6, outFeatures: 10 })), [2, 6, 6, 4]],
  ['batch norm (training) + dropout + global max pool', () => new L.Sequential(new L.Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1, bias: false }), new L.BatchNorm2d(8), new L.ReLU(), new L.Dropout(0.3), new L.GlobalMaxPool2d(), new L.BatchNorm1d(8), new L.Linear({ inFeatures: 8, outFeatures: 10 })), [4, 6, 6, 3]],
  ['branches, concat, asymmetric kernel, padded avg pool, residual add', () => new BranchAndResidual(), [2, 7, 7, 4]],
  ['adaptive pools', () => new L.Sequential(new L.Conv2d({ inChannels: 1, outChannels: 3, kernelSize: 3 }), new L.AdaptiveAvgPool2d(3), new L.AdaptiveMaxPool2d(2), new L.Flatten(), new L.Linear({ inFeatures: 12, outFeatures: 10 })), [2, 10, 10, 1]],
];

// The LeNets run by default; the deep families (minutes on SwiftShader) with KILN_WEBGPU_FULL=1.
// Their layers are all covered by the cases above.
const ZOO_CASES = process.env.KILN_WEBGPU_FULL === '1' ? ['lenet5', 'lenet5-classic', 'resnet18', 'googlenet', 'inception-v3'] : ['lenet5', 'lenet5-classic'];

describe('training kernels on WebGPU match the CPU backend', () => {
  skipWhenOptedOut();
  const gpu = webgpu.webgpuBackend();
  const cpu = cpuPkg.cpuBackend();
  const wasm = cpuPkg.wasmBackend();
  beforeAll(async () => {
    if (webGpuOptOut) return;
    await requireWebGpu(gpu);
  }, 60_000);

  const check = async (build: () => Module, shape: number[], mode: 'train' | 'eval' = 'train', reference: import('@kiln/core').BackendPlugin = cpu) => {
    const x = input(shape, shape.reduce((a, b) => a + b, 0));
    const labels = Array.from({ length: shape[0] }, (_, i) => (i * 3) % 10);
    await reference.init();
    const ref = await lossAndGrads(build, x, labels, mode);
    await gpu.init();
    const got = await lossAndGrads(build, x, labels, mode);
    expect(Math.abs(got.loss - ref.loss) / Math.max(1, Math.abs(ref.loss))).toBeLessThan(TOLERANCE);
    expect([...got.grads.keys()]).toEqual([...ref.grads.keys()]);
    for (const [name, g] of ref.grads) {
      expect(got.grads.get(name)!.shape, name).toEqual(g.shape);
      expect(maxRelativeError(got.grads.get(name)!.values, g.values), name).toBeLessThan(TOLERANCE);
    }
  };

  for (const [name, build, shape] of CASES) it(name, () => check(build, shape), 60_000);

  // Whole zoo models at a small input, one example, in eval mode: with batch statistics over one or
  // two values per channel, training-mode batch norm turns float32 rounding differences into
  // visible ones (its training path is checked above at a sane batch size). Reference: WASM, itself
  // tested against the CPU backend in @kiln/backend-cpu. VGG and AlexNet are left to the layer cases,
  // as their 4096-wide classifiers need hundreds of MB per copy.
  for (const name of ZOO_CASES) {
    it(`zoo: ${name}`, () => {
      const entry = zoo.modelEntry(name);
      const size = Math.max(entry.minInputSize, Math.min(entry.inputShape[0], 32));
      return check(() => entry.create({ numClasses: 10, inChannels: entry.inputShape[2] }), [1, size, size, entry.inputShape[2]], 'eval', wasm);
    }, 120_000);
  }

  it('leaks no tensors', async () => {
    await gpu.init();
    const before = tf.memory().numTensors;
    await lossAndGrads(CASES[0][1], input(CASES[0][2], 1), [0, 1, 2]);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);
});
