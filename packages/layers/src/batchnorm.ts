import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';

export interface BatchNormOptions {
  /** Channels of the input (its last axis). */
  numFeatures: number;
  /** Weight of the new batch statistic in the running average (PyTorch convention, default 0.1). */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Learn a per-channel scale (`weight`, init 1) and shift (`bias`, init 0). Default true. */
  affine?: boolean;
  /** Keep running mean/variance for eval mode; without them eval uses batch statistics. Default true. */
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation (Ioffe & Szegedy, 2015) over the last (channel) axis of NHWC or [N, C] input.
 * Training normalises with the batch's biased variance and updates the running statistics with the
 * unbiased one, as PyTorch does: running ← (1−m)·running + m·batch. Eval uses the running statistics.
 */
export class BatchNorm extends Module {
  readonly config: Required<BatchNormOptions>;
  readonly weight?: Parameter;
  readonly bias?: Parameter;

  constructor(options: BatchNormOptions | number) {
    super();
    const o = typeof options === 'number' ? { numFeatures: options } : options;
    if (!Number.isInteger(o.numFeatures) || o.numFeatures < 1) throw new ConfigError('BatchNorm.numFeatures', 'a positive integer', o.numFeatures);
    this.config = { momentum: 0.1, eps: 1e-5, affine: true, trackRunningStats: true, ...o };
    const c = o.numFeatures;
    if (this.config.affine) {
      this.weight = this.registerParameter('weight', tf.ones([c]));
      this.bias = this.registerParameter('bias', tf.zeros([c]));
    }
    if (this.config.trackRunningStats) {
      this.registerBuffer('running_mean', tf.zeros([c]));
      this.registerBuffer('running_var', tf.ones([c]));
      this.registerBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
    }
  }

  forward(x: Tensor): Tensor {
    const c = this.config.numFeatures;
    if (x.shape[x.rank - 1] !== c || x.rank < 2) this.expectShape(x, x.rank < 2 ? 4 : x.rank, { [Math.max(x.rank, 2) - 1]: c }, 'channels last');
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const useBatch = this.training || !this.config.trackRunningStats;
    const { eps, momentum } = this.config;
    return tf.tidy(() => {
      let mean: Tensor;
      let variance: Tensor;
      if (useBatch) {
        const m = tf.moments(x, axes);
        mean = m.mean;
        variance = m.variance;
        if (this.training && this.config.trackRunningStats) {
          const n = x.size / c;
          const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
          const rm = this.buffer('running_mean');
          const rv = this.buffer('running_var');
          const nb = this.buffer('num_batches_tracked');
          rm.assign(tf.add(tf.mul(rm, 1 - momentum), tf.mul(mean, momentum)));
          rv.assign(tf.add(tf.mul(rv, 1 - momentum), tf.mul(unbiased, momentum)));
          nb.assign(tf.add(nb, tf.scalar(1, 'int32')));
        }
      } else {
        mean = this.buffer('running_mean');
        variance = this.buffer('running_var');
      }
      if (this.weight && this.bias) return tf.batchNorm(x, mean, variance, this.bias.variable, this.weight.variable, eps);
      // tfjs's batch-norm gradient needs scale and offset, so the plain form is spelled out.
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    });
  }
}

/** PyTorch's names for the same layer over [N, C], NLC and NHWC inputs. */
export class BatchNorm1d extends BatchNorm {}
export class BatchNorm2d extends BatchNorm {}
