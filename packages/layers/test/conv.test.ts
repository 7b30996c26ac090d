import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, expectClose, fixtures, onCpu, runLayerContractTest, tf, toChannelsLast, toKernelLast, raw, useWasm, valueAndGrads, type Scalar, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

type AnyConv = InstanceType<typeof L.Conv1d> | InstanceType<typeof L.Conv2d> | InstanceType<typeof L.Conv3d>;

/** Runs a PyTorch conv case: output and the gradients for input, weight and bias, all to 1e-5. */
function checkCase(c: any, make: () => AnyConv): void {
  const m = make();
  m.weight.assign(tf.tidy(() => toKernelLast(c.w)));
  if (c.b) m.bias?.assign(tf.tidy(() => raw(c.b)));
  const x = toChannelsLast(c.x);
  const cot = toChannelsLast(c.cot);
  const { y, grads } = valueAndGrads(
    (xi: Tensor) => m.forward(xi),
    [x],
    cot,
  );
  expectClose(y, toChannelsLast(c.y), 1e-5, `${c.name} y`);
  expectClose(grads[0], toChannelsLast(c.g_x), 1e-5, `${c.name} dx`);
  const vars = m.trainableVariables();
  const { grads: pg } = tf.variableGrads(() => tf.sum(tf.mul(m.forward(x), cot)) as Scalar, vars);
  const gw = tf.tidy(() => toKernelLast(c.g_w));
  expectClose(pg[m.weight.variable.name], gw, 1e-5, `${c.name} dW`);
  if (c.b) {
    const gb = raw(c.g_b);
    expectClose(pg[m.bias!.variable.name], gb, 1e-5, `${c.name} db`);
    gb.dispose();
  }
  tf.dispose([x, cot, y, gw, ...grads, ...Object.values(pg)]);
  m.dispose();
}

describe('Conv2d matches PyTorch (strides, padding, dilation, groups) in value and gradients', () => {
  for (const c of fixtures.conv2d) {
    it(c.name, () => checkCase(c, () => new L.Conv2d({ inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, bias: c.bias })));
  }
  it('agrees on the CPU reference backend too', async () => {
    await onCpu(() => {
      for (const c of fixtures.conv2d.filter((f: any) => f.dilation !== 1 || f.groups !== 1)) {
        checkCase(c, () => new L.Conv2d({ inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, bias: c.bias }));
      }
    });
  });
});

describe('Conv1d and Conv3d match PyTorch', () => {
  for (const c of fixtures.conv1d) {
    it(`conv1d ${c.name}`, () => checkCase(c, () => new L.Conv1d({ inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups })));
  }
  for (const c of fixtures.conv3d) {
    it(`conv3d ${c.name}`, () => checkCase(c, () => new L.Conv3d({ inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups })));
  }
});

describe('convolution contracts', () => {
  it('Conv2d: shapes, parameter count (grouped, dilated), gradients, shape errors', () => {
    runLayerContractTest({
      make: () => new L.Conv2d({ inChannels: 4, outChannels: 6, kernelSize: 3, stride: 2, padding: 2, dilation: 2, groups: 2 }),
      input: [2, 7, 7, 4],
      output: [2, 4, 4, 6],
      params: 3 * 3 * 2 * 6 + 6,
      badInput: [2, 7, 7, 3],
    });
  });
  it("Conv2d 'same' keeps the size at stride 1 and has no bias when asked", () => {
    runLayerContractTest({ make: () => new L.Conv2d({ inChannels: 2, outChannels: 3, kernelSize: [3, 2], padding: 'same', bias: false }), input: [1, 5, 4, 2], output: [1, 5, 4, 3], params: 3 * 2 * 2 * 3, badInput: [5, 4, 2] });
  });
  it('Conv1d', () => {
    runLayerContractTest({ make: () => new L.Conv1d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, dilation: 2 }), input: [2, 8, 3], output: [2, 6, 4], params: 3 * 3 * 4 + 4, badInput: [2, 8, 4] });
  });
  it('Conv3d', () => {
    runLayerContractTest({ make: () => new L.Conv3d({ inChannels: 2, outChannels: 2, kernelSize: 2, stride: [1, 2, 1], groups: 2 }), input: [1, 3, 4, 3, 2], output: [1, 2, 2, 2, 2], params: 8 * 1 * 2 + 2, badInput: [1, 3, 4, 3] });
  });
  it('rejects bad options naming the option', () => {
    expect(() => new L.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, groups: 2 })).toThrow(/Conv2d.groups/);
    expect(() => new L.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 0 })).toThrow(core.ConfigError);
    expect(() => new L.Conv1d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: -1 })).toThrow(/Conv1d.padding/);
    expect(() => new L.Conv3d({ inChannels: 3, outChannels: 4, kernelSize: [3, 3] as any })).toThrow(/Conv3d.kernelSize/);
  });
  it('the error for a wrong input names the layer path, the expected and the actual shape', () => {
    const net = new L.Sequential(new L.Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3 }), new L.Conv2d({ inChannels: 3, outChannels: 2, kernelSize: 1 }));
    const x = tf.zeros([1, 5, 5, 1]);
    let err: any;
    try {
      net.forward(x);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(core.ShapeMismatchError);
    expect(err.where).toBe('1 (Conv2d)');
    expect(err.expected).toBe('[?, ?, ?, 3] (NHWC)');
    expect(err.found).toBe('[1, 3, 3, 2]');
    x.dispose();
    net.dispose();
  });
  it('an input smaller than the dilated kernel is a shape error naming the layer', () => {
    const conv = new L.Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 3, dilation: 2, padding: 1 });
    const x = tf.zeros([1, 2, 8, 1]);
    expect(() => conv.forward(x)).toThrow(/<root> \(Conv2d\)[\s\S]*spatial size of at least \[3, 3\][\s\S]*found: \[1, 2, 8, 1\]/);
    const c1 = new L.Conv1d({ inChannels: 1, outChannels: 1, kernelSize: 4 });
    const s = tf.zeros([1, 3, 1]);
    expect(() => c1.forward(s)).toThrow(core.ShapeMismatchError);
    const pool = new L.MaxPool2d(3);
    expect(() => pool.forward(x)).toThrow(/MaxPool2d[\s\S]*found: \[1, 2, 8, 1\]/);
    tf.dispose([x, s]);
    conv.dispose();
    c1.dispose();
  });
  it('dilateKernel spreads taps with zeros', () => {
    const w = tf.tensor([1, 2, 3], [3, 1, 1, 1]);
    const d = L.dilateKernel(w, [2, 1]);
    expect(d.shape).toEqual([5, 1, 1, 1]);
    expect(Array.from(d.dataSync())).toEqual([1, 0, 2, 0, 3]);
    tf.dispose([w, d]);
  });
});
