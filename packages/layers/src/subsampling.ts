import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { pair } from './conv.js';

/** Options of {@link Subsampling}. */
export interface SubsamplingOptions {
  /** Number of feature maps (channels). */
  channels: number;
  /** Window size. Default 2 (LeNet-5's S2 and S4). */
  kernelSize?: number | [number, number];
  /** Default: the kernel size (non-overlapping windows). */
  stride?: number | [number, number];
}

/**
 * LeNet's trainable subsampling layer (LeCun et al., 1998): per feature map c,
 * y = a_c · mean(window) + b_c, with a learned coefficient `weight` (init 1) and `bias` (init 0) —
 * two parameters per map. The paper's squashing function follows as a separate activation.
 * (The paper sums the four inputs; the mean differs only by a constant absorbed into a_c.)
 */
export class Subsampling extends Module {
  /** The options with every default filled in. */
  readonly config: {
    /** Feature maps. */
    channels: number;
    /** Window [h, w]. */
    kernelSize: [number, number];
    /** Step [h, w]. */
    stride: [number, number];
  };
  /** The coefficient a_c of each map, `[channels]`. */
  readonly weight: Parameter;
  /** The bias b_c of each map, `[channels]`. */
  readonly bias: Parameter;

  constructor(options: SubsamplingOptions) {
    super();
    if (!Number.isInteger(options.channels) || options.channels < 1) throw new ConfigError('Subsampling.channels', 'a positive integer', options.channels);
    const kernelSize = pair(options.kernelSize ?? 2);
    const stride = pair(options.stride ?? kernelSize);
    if ([...kernelSize, ...stride].some((v) => !Number.isInteger(v) || v < 1)) throw new ConfigError('Subsampling.kernelSize', 'positive integers', options.kernelSize);
    this.config = { channels: options.channels, kernelSize, stride };
    this.weight = this.registerParameter('weight', tf.ones([options.channels]));
    this.bias = this.registerParameter('bias', tf.zeros([options.channels]));
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, { 3: this.config.channels }, 'NHWC');
    return tf.tidy(() => tf.add(tf.mul(tf.avgPool(x as tf.Tensor4D, this.config.kernelSize, this.config.stride, 'valid'), this.weight.variable), this.bias.variable));
  }
}
