import { tf, ConfigError, ShapeMismatchError, type Rng } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { torchDefaultBias, torchDefaultWeight, type Initializer } from './initializers.js';
import type { Regularizer } from './regularizers.js';
import { fusedConv2d, type FusedActivation } from './fused-training.js';

/** Padding of a 2-D convolution or pool: `valid`, `same`, or zeros on both sides (one number, or [h, w]). */
export type Padding2d = 'valid' | 'same' | number | [number, number];
/** Padding of a 1-D convolution or pool: `valid`, `same`, or zeros on both sides. */
export type Padding1d = 'valid' | 'same' | number;
/** Padding of a 3-D convolution: `valid`, `same`, or zeros on both sides (one number, or [d, h, w]). */
export type Padding3d = 'valid' | 'same' | number | [number, number, number];

/** Options shared by Conv1d, Conv2d and Conv3d; `T` is a number or a per-spatial-dim tuple. */
interface ConvOptionsBase<T, P> {
  /** Channels of the input (its last axis). */
  inChannels: number;
  /** Channels of the output, one filter each. */
  outChannels: number;
  /** Kernel extent per spatial dim (one number for all). */
  kernelSize: T;
  /** Default 1. */
  stride?: T;
  /**
   * `valid` (none), `same` (output size = ⌈input / stride⌉, TF's split, extra cell at the end) or
   * explicit zero padding on both sides of each spatial dim as in PyTorch. Default 0.
   */
  padding?: P;
  /** Spacing between kernel taps (à trous). Default 1. */
  dilation?: T;
  /** Channel groups: 1 (dense), `inChannels` (depthwise) or any common divisor. Default 1. */
  groups?: number;
  /** Whether to add a learned bias. Default true. */
  bias?: boolean;
  /** Default: PyTorch's kaiming_uniform(a=√5), i.e. U(±1/√fanIn). */
  weightInit?: Initializer;
  /** Default: U(±1/√fanIn), as in PyTorch. */
  biasInit?: Initializer;
  /** Penalty on the weights added to the training loss. */
  weightRegularizer?: Regularizer;
  /** Penalty on the bias added to the training loss. */
  biasRegularizer?: Regularizer;
  /** Generator for the initializers (default: the global seeded one). */
  rng?: Rng;
}

/** Options of {@link Conv1d}. */
export type Conv1dOptions = ConvOptionsBase<number, Padding1d>;
/** Options of {@link Conv2d}: sizes are one number for both spatial dims or [h, w]. */
export type Conv2dOptions = ConvOptionsBase<number | [number, number], Padding2d>;
/** Options of {@link Conv3d}: sizes are one number for all spatial dims or [d, h, w]. */
export type Conv3dOptions = ConvOptionsBase<number | [number, number, number], Padding3d>;

/** `v` as [h, w]: a number stands for both. */
export const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

function tuple(layer: string, name: string, v: number | readonly number[], n: number, min: number): number[] {
  const t = typeof v === 'number' ? Array.from({ length: n }, () => v) : [...v];
  if (t.length !== n || t.some((x) => !Number.isInteger(x) || x < min)) {
    throw new ConfigError(`${layer}.${name}`, min > 0 ? `a positive integer or ${n} of them` : `a non-negative integer or ${n} of them`, v);
  }
  return t;
}

/** tfjs's padding argument for NHWC from Kiln's padding option. */
export function tfPadding(p: Padding2d): 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]] {
  if (p === 'valid' || p === 'same') return p;
  const [ph, pw] = pair(p);
  if (ph === 0 && pw === 0) return 'valid';
  return [
    [0, 0],
    [ph, ph],
    [pw, pw],
    [0, 0],
  ];
}

/**
 * Spreads a kernel's taps `d` apart by inserting zeros, along each leading spatial axis:
 * a k-tap kernel becomes (k−1)·d+1 taps. Convolving with it equals a dilated convolution, and it is
 * built from differentiable ops, whereas tfjs's conv gradients refuse dilation > 1.
 */
export function dilateKernel(w: Tensor, dilation: readonly number[]): Tensor {
  return tf.tidy(() => {
    let k = w;
    dilation.forEach((d, axis) => {
      if (d === 1) return;
      const shape = k.shape as number[];
      const taps = shape[axis];
      const gapShape = [...shape];
      gapShape.splice(axis + 1, 0, d - 1);
      gapShape[axis] = taps;
      const withGaps = tf.concat([tf.expandDims(k, axis + 1), tf.zeros(gapShape)], axis + 1);
      const merged = [...shape];
      merged[axis] = taps * d;
      const begin = shape.map(() => 0);
      const size = [...shape];
      size[axis] = (taps - 1) * d + 1;
      k = tf.slice(tf.reshape(withGaps, merged), begin, size);
    });
    return k;
  });
}

interface ConvConfigN {
  inChannels: number;
  outChannels: number;
  groups: number;
  bias: boolean;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** 'valid', 'same' or explicit per spatial dim. */
  pad: 'valid' | 'same' | number[];
}

type Conv2dPad = 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];

/** NHWC convolution with an already dilated HWIO kernel, any group count. */
function conv2dGrouped(x: Tensor, kernel: Tensor, strides: [number, number], pad: Conv2dPad, groups: number, inChannels: number, outChannels: number): Tensor {
  if (groups === 1) return tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, pad);
  if (groups === inChannels) {
    // Depthwise: output channel ch·m + j reads input channel ch, which is exactly the grouped
    // layout [kh, kw, 1, out] reshaped to [kh, kw, in, m].
    const [kh, kw] = kernel.shape as number[];
    const dw = tf.reshape(kernel, [kh, kw, inChannels, outChannels / inChannels]) as tf.Tensor4D;
    // Explicit padding is applied as a pad op here, the form every backend's gradient handles.
    const padded = typeof pad === 'string' ? x : tf.pad(x, pad);
    return tf.depthwiseConv2d(padded as tf.Tensor4D, dw, strides, typeof pad === 'string' ? pad : 'valid');
  }
  const xs = tf.split(x, groups, 3);
  const ws = tf.split(kernel, groups, 3);
  return tf.concat(
    xs.map((xg, g) => tf.conv2d(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, strides, pad)),
    3,
  );
}

/** TF's 'same' split of the padding along one dim: [before, after]. */
function samePadding(size: number, effectiveKernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effectiveKernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * Channels-last convolution over 2 or 3 spatial dims, differentiable for every option.
 * 3-D convolution is a sum over depth taps of 2-D convolutions on depth slices folded into the
 * batch: it reuses the well-tested 2-D kernels and their gradients on every backend.
 */
function convolve(x: Tensor, w: Tensor, c: ConvConfigN): Tensor {
  const spatial = c.kernel.length;
  const pad: 'valid' | 'same' = c.pad === 'same' ? 'same' : 'valid';
  // Explicit padding as tfjs spells it: [before, after] for every axis, batch and channels included.
  const explicit = typeof c.pad !== 'string' && c.pad.some((p) => p > 0) ? [[0, 0], ...c.pad.map((p): [number, number] => [p, p]), [0, 0]] : null;
  if (spatial === 2) {
    // tf.conv2d takes explicit padding itself (no extra pad op on the hot path).
    return conv2dGrouped(x, dilateKernel(w, c.dilations), c.strides as [number, number], (explicit as Conv2dPad | null) ?? pad, c.groups, c.inChannels, c.outChannels);
  }
  let input = explicit ? tf.pad(x, explicit as [number, number][]) : x;
  const [kd] = c.kernel;
  const [dd, ...dhw] = c.dilations;
  const [sd, ...shw] = c.strides;
  const effective = (kd - 1) * dd + 1;
  if (pad === 'same') input = tf.pad(input, [[0, 0], samePadding(input.shape[1] as number, effective, sd), [0, 0], [0, 0], [0, 0]]);
  const [n, depth, h, wd, ch] = input.shape as number[];
  const outDepth = Math.floor((depth - effective) / sd) + 1;
  // Pad the end so every tap can take outDepth·sd slices and keep every sd-th.
  const reach = (kd - 1) * dd + outDepth * sd;
  if (reach > depth) input = tf.pad(input, [[0, 0], [0, reach - depth], [0, 0], [0, 0], [0, 0]]);
  const kernel = dilateKernel(w, [1, ...dhw]);
  const taps = tf.unstack(kernel, 0);
  let y: Tensor | undefined;
  taps.forEach((tap, i) => {
    const slab = tf.slice(input, [0, i * dd, 0, 0, 0], [n, outDepth * sd, h, wd, ch]);
    const picked = tf.slice(tf.reshape(slab, [n, outDepth, sd, h, wd, ch]), [0, 0, 0, 0, 0, 0], [n, outDepth, 1, h, wd, ch]);
    const z = conv2dGrouped(tf.reshape(picked, [n * outDepth, h, wd, ch]), tap, shw as [number, number], pad, c.groups, c.inChannels, c.outChannels);
    const zs = z.shape as number[];
    const part = tf.reshape(z, [n, outDepth, zs[1], zs[2], zs[3]]);
    y = y ? tf.add(y, part) : part;
  });
  return y as Tensor;
}

/** Shared construction and forward pass of Conv1d/2d/3d. */
abstract class ConvNd extends Module {
  /** The filters, `[...kernel, inChannels/groups, outChannels]`. */
  readonly weight: Parameter;
  /** `[outChannels]`, unless `bias: false`. */
  readonly bias?: Parameter;
  /** The resolved geometry every forward pass uses. */
  protected readonly conv: ConvConfigN;

  protected constructor(layer: string, spatial: number, options: ConvOptionsBase<number | number[], 'valid' | 'same' | number | number[]>) {
    super();
    const { inChannels, outChannels } = options;
    const groups = options.groups ?? 1;
    for (const [n, v] of [
      ['inChannels', inChannels],
      ['outChannels', outChannels],
      ['groups', groups],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ConfigError(`${layer}.${n}`, 'a positive integer', v);
    }
    if (inChannels % groups || outChannels % groups) {
      throw new ConfigError(`${layer}.groups`, `a divisor of inChannels (${inChannels}) and outChannels (${outChannels})`, groups);
    }
    const kernel = tuple(layer, 'kernelSize', options.kernelSize, spatial, 1);
    const strides = tuple(layer, 'stride', options.stride ?? 1, spatial, 1);
    const dilations = tuple(layer, 'dilation', options.dilation ?? 1, spatial, 1);
    const padding = options.padding ?? 0;
    let pad: ConvConfigN['pad'];
    if (typeof padding === 'string') {
      if (padding !== 'valid' && padding !== 'same') throw new ConfigError(`${layer}.padding`, "'valid', 'same' or non-negative integers", padding);
      pad = padding;
    } else {
      pad = tuple(layer, 'padding', padding, spatial, 0);
    }
    this.conv = { inChannels, outChannels, groups, bias: options.bias ?? true, kernel, strides, dilations, pad };
    const wShape = [...kernel, inChannels / groups, outChannels];
    const fanIn = (inChannels / groups) * kernel.reduce((a, b) => a * b, 1);
    this.weight = this.registerParameter('weight', (options.weightInit ?? torchDefaultWeight())(wShape, options.rng), { regularizer: options.weightRegularizer });
    if (this.conv.bias) {
      this.bias = this.registerParameter('bias', (options.biasInit ?? torchDefaultBias(fanIn))([outChannels], options.rng), { regularizer: options.biasRegularizer });
    }
  }

  /** A kernel wider than the (padded) input has no valid position; say so in the layer's terms. */
  protected expectFits(x: Tensor): void {
    const { pad, kernel, dilations } = this.conv;
    if (pad === 'same') return;
    const need = kernel.map((k, d) => (k - 1) * dilations[d] + 1 - 2 * (pad === 'valid' ? 0 : pad[d]));
    if ((x.shape as number[]).slice(1, -1).some((v, d) => v < need[d])) {
      throw new ShapeMismatchError(this.describe(), `spatial size of at least [${need.join(', ')}] (dilated kernel minus padding)`, x.shape);
    }
  }

  /** The convolution of `x` with the filters `w` (plus the bias). */
  protected run(x: Tensor, w: Tensor, conv = this.conv): Tensor {
    return tf.tidy(() => {
      const y = convolve(x, w, conv);
      return this.bias ? tf.add(y, this.bias.variable) : y;
    });
  }
}

/**
 * 2-D convolution over NHWC input. The weight is stored HWIO, `[kh, kw, inChannels/groups,
 * outChannels]`, which is tfjs's native filter layout; importers transpose from PyTorch's OIHW.
 */
export class Conv2d extends ConvNd {
  /** The options with every default filled in, sizes as [h, w]. */
  readonly config: Required<Pick<Conv2dOptions, 'inChannels' | 'outChannels' | 'groups' | 'bias'>> & {
    /** Kernel extent per spatial dim. */
    kernelSize: [number, number];
    /** Step per spatial dim. */
    stride: [number, number];
    /** As given (default 0). */
    padding: Padding2d;
    /** Spacing between kernel taps per spatial dim. */
    dilation: [number, number];
  };

  constructor(options: Conv2dOptions) {
    super('Conv2d', 2, options);
    const { inChannels, outChannels, groups, bias, kernel, strides, dilations } = this.conv;
    this.config = {
      inChannels,
      outChannels,
      groups,
      bias,
      kernelSize: kernel as [number, number],
      stride: strides as [number, number],
      padding: options.padding ?? 0,
      dilation: dilations as [number, number],
    };
  }

  forward(x: Tensor): Tensor {
    return this.forwardFused(x, 'linear');
  }

  /**
   * The convolution, bias and an optional ReLU. Ungrouped, undilated float32 convolutions run as
   * one fused kernel (tfjs `FusedConv2D`) in training and eval mode alike: inference is about a
   * third faster on the WASM backend, and a training step runs a third of the kernel calls
   * (docs/benchmarks.md); the gradient is registered by kernel name (fused-training.ts).
   */
  forwardFused(x: Tensor, activation: FusedActivation): Tensor {
    this.expectShape(x, 4, { 3: this.conv.inChannels }, 'NHWC');
    this.expectFits(x);
    const { groups, dilations, strides, pad } = this.conv;
    if (groups === 1 && dilations.every((d) => d === 1) && x.dtype === 'float32') {
      const explicit = typeof pad !== 'string' && pad.some((p) => p > 0) ? ([[0, 0], [pad[0], pad[0]], [pad[1], pad[1]], [0, 0]] as Conv2dPad) : null;
      return fusedConv2d(x, this.weight.variable, this.bias?.variable, strides as [number, number], explicit ?? (pad === 'same' ? 'same' : 'valid'), activation);
    }
    const y = this.run(x, this.weight.variable);
    if (activation === 'linear') return y;
    const r = tf.relu(y);
    y.dispose();
    return r;
  }
}

/**
 * 1-D convolution over [N, L, C] input (channels last). The weight is `[k, inChannels/groups,
 * outChannels]`; PyTorch's [out, in, k] transposes with perm [2, 1, 0].
 */
export class Conv1d extends ConvNd {
  /** The options with every default filled in. */
  readonly config: Required<Pick<Conv1dOptions, 'inChannels' | 'outChannels' | 'groups' | 'bias' | 'kernelSize' | 'stride' | 'padding' | 'dilation'>>;

  constructor(options: Conv1dOptions) {
    super('Conv1d', 1, options);
    this.config = {
      inChannels: options.inChannels,
      outChannels: options.outChannels,
      groups: this.conv.groups,
      bias: this.conv.bias,
      kernelSize: options.kernelSize,
      stride: options.stride ?? 1,
      padding: options.padding ?? 0,
      dilation: options.dilation ?? 1,
    };
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 3, { 2: this.conv.inChannels }, 'NLC');
    this.expectFits(x);
    // A sequence is an image one row high; the same 2-D kernels do the work.
    const [n, l, c] = x.shape as number[];
    const { kernel, strides, dilations, pad } = this.conv;
    const conv2: ConvConfigN = { ...this.conv, kernel: [1, kernel[0]], strides: [1, strides[0]], dilations: [1, dilations[0]], pad: typeof pad === 'string' ? pad : [0, pad[0]] };
    return tf.tidy(() => {
      const y = this.run(tf.reshape(x, [n, 1, l, c]), tf.expandDims(this.weight.variable, 0), conv2);
      return tf.reshape(y, [n, (y.shape as number[])[2], this.conv.outChannels]);
    });
  }
}

/** 3-D convolution over [N, D, H, W, C] input. The weight is `[kd, kh, kw, inChannels/groups, outChannels]`. */
export class Conv3d extends ConvNd {
  /** The options with every default filled in, sizes as [d, h, w]. */
  readonly config: Required<Pick<Conv3dOptions, 'inChannels' | 'outChannels' | 'groups' | 'bias'>> & {
    /** Kernel extent per spatial dim. */
    kernelSize: [number, number, number];
    /** Step per spatial dim. */
    stride: [number, number, number];
    /** As given (default 0). */
    padding: Padding3d;
    /** Spacing between kernel taps per spatial dim. */
    dilation: [number, number, number];
  };

  constructor(options: Conv3dOptions) {
    super('Conv3d', 3, options);
    const { inChannels, outChannels, groups, bias, kernel, strides, dilations } = this.conv;
    this.config = {
      inChannels,
      outChannels,
      groups,
      bias,
      kernelSize: kernel as [number, number, number],
      stride: strides as [number, number, number],
      padding: options.padding ?? 0,
      dilation: dilations as [number, number, number],
    };
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 5, { 4: this.conv.inChannels }, 'NDHWC');
    this.expectFits(x);
    return this.run(x, this.weight.variable);
  }
}
