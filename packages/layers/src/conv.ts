import { tf, ConfigError, type Rng } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { torchDefaultBias, torchDefaultWeight, type Initializer } from './initializers.js';
import type { Regularizer } from './regularizers.js';

export type Padding2d = 'valid' | 'same' | number | [number, number];

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: number | [number, number];
  stride?: number | [number, number];
  /** `valid`, `same`, or explicit zero padding (symmetric per spatial dim) as in PyTorch. Default 0. */
  padding?: Padding2d;
  dilation?: number | [number, number];
  /** Channel groups: 1 (dense), `inChannels` (depthwise) or any common divisor. */
  groups?: number;
  bias?: boolean;
  weightInit?: Initializer;
  biasInit?: Initializer;
  weightRegularizer?: Regularizer;
  biasRegularizer?: Regularizer;
  rng?: Rng;
}

export const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

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

function checkPositive(layer: string, name: string, v: number | [number, number]): void {
  for (const x of pair(v)) if (!Number.isInteger(x) || x < 1) throw new ConfigError(`${layer}.${name}`, 'a positive integer or pair of them', v);
}

/**
 * 2-D convolution over NHWC input. The weight is stored HWIO, `[kh, kw, inChannels/groups,
 * outChannels]`, which is tfjs's native filter layout; importers transpose from PyTorch's OIHW.
 */
export class Conv2d extends Module {
  readonly config: Required<Pick<Conv2dOptions, 'inChannels' | 'outChannels' | 'groups' | 'bias'>> & {
    kernelSize: [number, number];
    stride: [number, number];
    padding: Padding2d;
    dilation: [number, number];
  };
  readonly weight: Parameter;
  readonly bias?: Parameter;

  constructor(options: Conv2dOptions) {
    super();
    const { inChannels, outChannels } = options;
    const groups = options.groups ?? 1;
    for (const [n, v] of [
      ['inChannels', inChannels],
      ['outChannels', outChannels],
      ['groups', groups],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ConfigError(`Conv2d.${n}`, 'a positive integer', v);
    }
    if (inChannels % groups || outChannels % groups) {
      throw new ConfigError('Conv2d.groups', `a divisor of inChannels (${inChannels}) and outChannels (${outChannels})`, groups);
    }
    checkPositive('Conv2d', 'kernelSize', options.kernelSize);
    checkPositive('Conv2d', 'stride', options.stride ?? 1);
    checkPositive('Conv2d', 'dilation', options.dilation ?? 1);
    const padding = options.padding ?? 0;
    if (typeof padding !== 'string') {
      for (const p of pair(padding)) if (!Number.isInteger(p) || p < 0) throw new ConfigError('Conv2d.padding', "'valid', 'same' or non-negative integers", padding);
    } else if (padding !== 'valid' && padding !== 'same') {
      throw new ConfigError('Conv2d.padding', "'valid', 'same' or non-negative integers", padding);
    }
    const kernelSize = pair(options.kernelSize);
    this.config = { inChannels, outChannels, groups, bias: options.bias ?? true, kernelSize, stride: pair(options.stride ?? 1), padding, dilation: pair(options.dilation ?? 1) };
    const wShape = [kernelSize[0], kernelSize[1], inChannels / groups, outChannels];
    const fanIn = (inChannels / groups) * kernelSize[0] * kernelSize[1];
    this.weight = this.registerParameter('weight', (options.weightInit ?? torchDefaultWeight())(wShape, options.rng), { regularizer: options.weightRegularizer });
    if (this.config.bias) {
      this.bias = this.registerParameter('bias', (options.biasInit ?? torchDefaultBias(fanIn))([outChannels], options.rng), { regularizer: options.biasRegularizer });
    }
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, { 3: this.config.inChannels }, 'NHWC');
    const { groups, inChannels, outChannels, stride, dilation, padding } = this.config;
    const pad = tfPadding(padding);
    const w = this.weight.variable;
    return tf.tidy(() => {
      let y: Tensor;
      if (groups === 1) {
        y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad, 'NHWC', dilation);
      } else if (groups === inChannels) {
        // Depthwise: output channel c·m + j reads input channel c, which is exactly the grouped
        // layout [kh, kw, 1, out] reshaped to [kh, kw, in, m].
        const [kh, kw] = this.config.kernelSize;
        const dw = tf.reshape(w, [kh, kw, inChannels, outChannels / inChannels]) as tf.Tensor4D;
        y = tf.depthwiseConv2d(x as tf.Tensor4D, dw, stride, pad, 'NHWC', dilation);
      } else {
        const xs = tf.split(x, groups, 3);
        const ws = tf.split(w, groups, 3);
        y = tf.concat(
          xs.map((xg, g) => tf.conv2d(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, stride, pad, 'NHWC', dilation)),
          3,
        );
      }
      return this.bias ? tf.add(y, this.bias.variable) : y;
    });
  }
}
