import { tf, ConfigError, type Rng } from '@kiln/core';
import type { Initializer } from './initializers.js';
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
  /**
   * What the coefficient multiplies: the window's `'mean'` (default) or its `'sum'`, as the paper
   * writes it (the two differ by the window size, which the learned coefficient absorbs, but not
   * for a given initialisation).
   */
  reduce?: 'mean' | 'sum';
  /** Initial coefficients. Default: ones. */
  weightInit?: Initializer;
  /** Initial biases. Default: zeros. */
  biasInit?: Initializer;
  /** Generator for the initializers (default: the global one). */
  rng?: Rng;
}

/**
 * LeNet's trainable subsampling layer (LeCun et al., 1998): per feature map c,
 * y = a_c · mean(window) + b_c, with a learned coefficient `weight` (init 1) and `bias` (init 0) —
 * two parameters per map. The paper's squashing function follows as a separate activation.
 * (The paper sums the four inputs, `reduce: 'sum'`; the mean differs only by a constant absorbed
 * into a_c.)
 */
export class Subsampling extends Module {
  /** The options with every default filled in, sizes as [h, w]. */
  readonly config: {
    /** Feature maps in and out (the input's last axis). */
    channels: number;
    /** Window extent, [h, w] (default [2, 2]). */
    kernelSize: [number, number];
    /** Step between windows, [h, w] (default: the kernel size). */
    stride: [number, number];
    /** Whether the coefficient multiplies the window's mean or its sum (default `'mean'`). */
    reduce: 'mean' | 'sum';
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
    const reduce = options.reduce ?? 'mean';
    if (reduce !== 'mean' && reduce !== 'sum') throw new ConfigError('Subsampling.reduce', "'mean' or 'sum'", reduce);
    this.config = { channels: options.channels, kernelSize, stride, reduce };
    const c = [options.channels];
    this.weight = this.registerParameter('weight', options.weightInit ? options.weightInit(c, options.rng) : tf.ones(c));
    this.bias = this.registerParameter('bias', options.biasInit ? options.biasInit(c, options.rng) : tf.zeros(c));
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, { 3: this.config.channels }, 'NHWC');
    const { kernelSize, stride, reduce } = this.config;
    return tf.tidy(() => {
      const mean = tf.avgPool(x as tf.Tensor4D, kernelSize, stride, 'valid');
      const pooled = reduce === 'sum' ? tf.mul(mean, kernelSize[0] * kernelSize[1]) : mean;
      return tf.add(tf.mul(pooled, this.weight.variable), this.bias.variable);
    });
  }
}
