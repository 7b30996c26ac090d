import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { standardize } from './normalization-utils.js';

/** Options of `GroupNorm`. */
export interface GroupNormOptions {
  /** Number of channel groups; must divide `numChannels`. */
  numGroups: number;
  /** Channels of the input (its last axis). */
  numChannels: number;
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Learn a per-channel scale (`weight`, init 1) and shift (`bias`, init 0). Default true. */
  affine?: boolean;
}

/**
 * Standardises each sample over all positions of each channel group `[N, …, C]`, channels last,
 * then applies a per-channel affine map. One group is layer norm over (…, C); C groups is
 * instance norm.
 */
export function groupNormalize(x: Tensor, groups: number, eps: number): Tensor {
  return tf.tidy(() => {
    const shape = x.shape as number[];
    const c = shape[shape.length - 1];
    const grouped = tf.reshape(x, [...shape.slice(0, -1), groups, c / groups]);
    // Every axis but the batch and the group axis.
    const axes = Array.from({ length: grouped.rank }, (_, i) => i).filter((i) => i !== 0 && i !== grouped.rank - 2);
    return tf.reshape(standardize(grouped, axes, eps), shape);
  });
}

/** Group normalisation (Wu & He, 2018) over channels-last input ([N, C], NLC, NHWC, …). */
export class GroupNorm extends Module {
  /** The options with every default filled in. */
  readonly config: Required<GroupNormOptions>;
  /** Learned per-channel scale γ (with `affine`). */
  readonly weight?: Parameter;
  /** Learned per-channel shift β (with `affine`). */
  readonly bias?: Parameter;

  constructor(options: GroupNormOptions) {
    super();
    const { numGroups, numChannels } = options;
    if (!Number.isInteger(numChannels) || numChannels < 1) throw new ConfigError('GroupNorm.numChannels', 'a positive integer', numChannels);
    if (!Number.isInteger(numGroups) || numGroups < 1 || numChannels % numGroups) {
      throw new ConfigError('GroupNorm.numGroups', `a positive divisor of numChannels (${numChannels})`, numGroups);
    }
    this.config = { eps: 1e-5, affine: true, ...options };
    if (this.config.affine) {
      this.weight = this.registerParameter('weight', tf.ones([numChannels]));
      this.bias = this.registerParameter('bias', tf.zeros([numChannels]));
    }
  }

  forward(x: Tensor): Tensor {
    const c = this.config.numChannels;
    if (x.rank < 2 || x.shape[x.rank - 1] !== c) this.expectShape(x, Math.max(x.rank, 2), { [Math.max(x.rank, 2) - 1]: c }, 'channels last');
    return tf.tidy(() => {
      const y = groupNormalize(x, this.config.numGroups, this.config.eps);
      return this.weight && this.bias ? tf.add(tf.mul(y, this.weight.variable), this.bias.variable) : y;
    });
  }
}
