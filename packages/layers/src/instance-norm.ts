import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { groupNormalize } from './group-norm.js';

/** Options of {@link InstanceNorm}. */
export interface InstanceNormOptions {
  /** Channels of the input (its last axis). */
  numFeatures: number;
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Learn a per-channel scale and shift. Default false, as in PyTorch. */
  affine?: boolean;
}

/**
 * Instance normalisation (Ulyanov et al., 2016): each channel of each sample is standardised over
 * its spatial positions ([N, L, C], NHWC, NDHWC). Statistics are always the sample's own (PyTorch's
 * default, track_running_stats=False), so training and eval agree.
 */
export class InstanceNorm extends Module {
  /** The options with every default filled in. */
  readonly config: Required<InstanceNormOptions>;
  /** Learned per-channel scale γ, `[numFeatures]` (with `affine`). */
  readonly weight?: Parameter;
  /** Learned per-channel shift β, `[numFeatures]` (with `affine`). */
  readonly bias?: Parameter;

  constructor(options: InstanceNormOptions | number) {
    super();
    const o = typeof options === 'number' ? { numFeatures: options } : options;
    if (!Number.isInteger(o.numFeatures) || o.numFeatures < 1) throw new ConfigError('InstanceNorm.numFeatures', 'a positive integer', o.numFeatures);
    this.config = { eps: 1e-5, affine: false, ...o };
    if (this.config.affine) {
      this.weight = this.registerParameter('weight', tf.ones([o.numFeatures]));
      this.bias = this.registerParameter('bias', tf.zeros([o.numFeatures]));
    }
  }

  forward(x: Tensor): Tensor {
    const c = this.config.numFeatures;
    if (x.rank < 3 || x.shape[x.rank - 1] !== c) this.expectShape(x, Math.max(x.rank, 3), { [Math.max(x.rank, 3) - 1]: c }, 'channels last with spatial dims');
    return tf.tidy(() => {
      const y = groupNormalize(x, c, this.config.eps);
      return this.weight && this.bias ? tf.add(tf.mul(y, this.weight.variable), this.bias.variable) : y;
    });
  }
}

/** PyTorch's names for the same layer over NLC, NHWC and NDHWC input. */
export class InstanceNorm1d extends InstanceNorm {}
/** {@link InstanceNorm} under PyTorch's name for NHWC input. */
export class InstanceNorm2d extends InstanceNorm {}
/** {@link InstanceNorm} under PyTorch's name for NDHWC input. */
export class InstanceNorm3d extends InstanceNorm {}
