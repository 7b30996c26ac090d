/**
 * Training-mode fusion (src/fused-training.ts): conv/dense + bias + ReLU as one kernel with
 * gradients registered by kernel name, the softmax cross-entropy as one kernel each way. Checked
 * against PyTorch (tools/fixtures/layers/gen_fused_training.py) and finite differences, on the
 * default WASM backend — with oneDNN's kernels when the addon is built, and without them when the
 * tests run under KILN_DNNL=0 — and on the pure-JS reference backend.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { L, backends, checkParameterGradients, core, seeded, tf, useWasm, type Fx, type Module, type Scalar, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

const F = JSON.parse(readFileSync(fileURLToPath(new URL('../../../tools/fixtures/layers/fused-training.json', import.meta.url)), 'utf8'));
const fx = (f: Fx): Tensor => tf.tensor(f.data, f.shape);

/** Largest |a − b| / (1 + |b|). */
function worst(a: Tensor, b: Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(a.shape).toEqual(b.shape);
  let w = 0;
  for (let i = 0; i < y.length; i++) w = Math.max(w, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return w;
}

/** The fixture's network in Kiln, its parameters set to PyTorch's. */
function fixtureNet(): Module {
  const net = new L.Sequential(
    new L.Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 5, padding: 'same' }),
    new L.ReLU(),
    new L.MaxPool2d(2),
    new L.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3 }),
    new L.ReLU(),
    new L.MaxPool2d(2),
    new L.Flatten(),
    new L.Linear({ inFeatures: 16, outFeatures: 6 }),
    new L.ReLU(),
    new L.Linear({ inFeatures: 6, outFeatures: 5 }),
  );
  const names: Record<string, string> = { w1: '0.weight', b1: '0.bias', w2: '3.weight', b2: '3.bias', w3: '7.weight', b3: '7.bias', w4: '9.weight', b4: '9.bias' };
  const params = new Map(net.namedParameters());
  for (const [k, name] of Object.entries(names)) {
    const v = fx(F.net.params[k]);
    params.get(name)!.variable.assign(v);
    v.dispose();
  }
  return net;
}

/** Loss and gradients of every parameter (by the fixture's names) for one training step. */
function step(net: Module): { loss: number; grads: Record<string, Tensor> } {
  const x = fx(F.net.x);
  const labels = tf.tensor1d(F.net.labels, 'int32');
  const vars = net.trainableVariables();
  const { value, grads } = tf.variableGrads(() => L.crossEntropy(net.forward(x), labels) as Scalar, vars);
  const byName = new Map(net.namedParameters().map(([n, p]) => [p.variable.name, n]));
  const short: Record<string, string> = { '0.weight': 'w1', '0.bias': 'b1', '3.weight': 'w2', '3.bias': 'b2', '7.weight': 'w3', '7.bias': 'b3', '9.weight': 'w4', '9.bias': 'b4' };
  const out = Object.fromEntries(Object.entries(grads).map(([v, g]) => [short[byName.get(v)!], g]));
  const loss = value.dataSync()[0];
  tf.dispose([x, labels, value]);
  return { loss, grads: out };
}

describe.each(['wasm', 'cpu'])('training-mode fusion on %s', (backendName) => {
  const on = async <T>(fn: () => T): Promise<T> => {
    const prev = tf.getBackend();
    if (backendName === 'cpu') await backends.cpuBackend().init();
    try {
      return fn();
    } finally {
      await tf.setBackend(prev);
    }
  };

  it('a LeNet-shaped network: loss and every parameter gradient match PyTorch', async () => {
    await on(() => {
      const net = fixtureNet().train();
      const { loss, grads } = step(net);
      expect(Math.abs(loss - F.net.loss) / (1 + Math.abs(F.net.loss))).toBeLessThan(1e-5);
      for (const [k, want] of Object.entries(F.net.grads as Record<string, Fx>)) {
        const w = fx(want);
        expect(worst(grads[k], w), `gradient of ${k}`).toBeLessThan(1e-5);
        w.dispose();
      }
      tf.dispose(Object.values(grads));
      net.dispose();
    });
  });

  it('parameter gradients agree with finite differences', async () => {
    await on(() => {
      core.manualSeed(3);
      const net = fixtureNet().train();
      // Distinct inputs away from ReLU's kink and from ties in the pools.
      const x = seeded([2, 12, 12, 2], 9);
      checkParameterGradients(net, x, { eps: 1e-3, tol: 5e-3 });
      x.dispose();
      net.dispose();
    });
  });

  it('leaks no tensors over training steps', async () => {
    await on(() => {
      const net = fixtureNet().train();
      tf.dispose(Object.values(step(net).grads));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.dispose(Object.values(step(net).grads));
      expect(tf.memory().numTensors).toBe(before);
      net.dispose();
    });
  });

  it('cross-entropy without class weights matches PyTorch: smoothing, an ignored label, every reduction', async () => {
    await on(() => {
      for (const [name, c] of Object.entries(F.crossEntropy.cases as Record<string, any>)) {
        const x = fx(F.crossEntropy.logits);
        const labels = tf.tensor1d(c.labels, 'int32');
        const o = c.options;
        const options = { labelSmoothing: o.label_smoothing, ignoreIndex: o.ignore_index, reduction: o.reduction };
        const cot = fx(c.cot);
        const loss = (v: Tensor) => L.crossEntropy(v, labels, options);
        const y = loss(x);
        const want = fx(c.y);
        expect(worst(y, want), `${name} value`).toBeLessThan(1e-6);
        const g = tf.grad((v: Tensor) => tf.sum(tf.mul(loss(v), cot)))(x);
        const wantG = fx(c.g);
        expect(worst(g, wantG), `${name} gradient`).toBeLessThan(1e-6);
        tf.dispose([x, labels, cot, y, want, g, wantG]);
      }
    });
  });
});

describe('which kernels a training step runs (wasm)', () => {
  it('one fused kernel per conv/dense layer and one per loss direction; float labels are cast', async () => {
    const net = fixtureNet().train();
    const x = fx(F.net.x);
    const labels = tf.tensor1d(F.net.labels, 'float32');
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => L.crossEntropy(net.forward(x), labels) as Scalar, net.trainableVariables());
      tf.dispose([value, grads]);
    });
    const names = info.kernels.map((k) => k.name);
    const count = (k: string) => names.filter((n) => n === k).length;
    expect(count('FusedConv2D')).toBe(2);
    expect(count(core.LINEAR_KERNEL)).toBe(2);
    expect(count(core.SOFTMAX_CROSS_ENTROPY_KERNEL)).toBe(1);
    expect(count(core.SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL)).toBe(1);
    // No separate bias adds, ReLUs or log-softmax; the first layer's input gradient is never asked for.
    for (const k of ['Add', 'Relu', 'Conv2D', 'LogSoftmax', 'Exp']) expect(count(k), k).toBe(0);
    expect(count('Conv2DBackpropInput')).toBe(1);
    // Bias and ReLU gradients: one kernel per layer where the backend has it (the oneDNN addon);
    // else a step, a multiply and a sum. The last layer's bias gradient is always a sum.
    if (tf.getKernel(core.BIAS_RELU_GRAD_KERNEL, 'wasm')) {
      expect(count(core.BIAS_RELU_GRAD_KERNEL)).toBe(3);
      expect(count('Sum')).toBe(1);
    } else {
      expect(count('Step')).toBe(3);
      expect(count('Sum')).toBe(4);
    }
    tf.dispose([x, labels]);
    net.dispose();
  });

  it('a label outside the classes is a typed error naming it', () => {
    const x = tf.zeros([2, 3]);
    const labels = tf.tensor1d([1, 3], 'int32');
    expect(() => L.crossEntropy(x, labels)).toThrow(core.KilnError);
    expect(() => L.crossEntropy(x, labels)).toThrow(/label 3 of sample 1/);
    tf.dispose([x, labels]);
  });
});
