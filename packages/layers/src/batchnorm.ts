import { tf, BATCH_NORM_TRAINING_GRAD_KERNEL, BATCH_NORM_TRAINING_KERNEL, ConfigError } from '@kiln/core';
import { Module, type FreezeOptions, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';

/** Options of {@link BatchNorm}. */
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
 *
 * A frozen batch norm — frozen through `Module.freeze` (without `trainBn`), or whose scale and
 * shift have both been made non-trainable — behaves as in eval mode while the model trains: it
 * normalises with the running statistics and leaves them unchanged, as Lightning's
 * `BaseFinetuning` does by putting such layers in eval mode.
 */
export class BatchNorm extends Module {
  /** The options with every default filled in. */
  readonly config: Required<BatchNormOptions>;
  /** Learned per-channel scale γ, `[numFeatures]` (with `affine`). */
  readonly weight?: Parameter;
  /** Learned per-channel shift β, `[numFeatures]` (with `affine`). */
  readonly bias?: Parameter;
  /** Set by `freeze` (without `trainBn`): the statistics are frozen whatever the parameters say. */
  private frozenByFreeze = false;

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

  protected override setFrozen(frozen: boolean, options: FreezeOptions): void {
    if (frozen && options.trainBn) return;
    super.setFrozen(frozen, options);
    this.frozenByFreeze = frozen;
  }

  /**
   * Whether the layer normalises with its running statistics and keeps them unchanged in training
   * mode: frozen by `freeze`, or every parameter it has made non-trainable.
   */
  get statisticsFrozen(): boolean {
    if (!this.config.trackRunningStats) return false;
    if (this.frozenByFreeze) return true;
    const params = [this.weight, this.bias].filter((p) => p !== undefined);
    return params.length > 0 && params.every((p) => !p.trainable);
  }

  /**
   * running ← (1−momentum)·running + momentum·batch, with the unbiased batch variance (`count`
   * values per channel), as PyTorch does. Only in training mode with running statistics.
   */
  updateRunningStats(mean: Tensor, variance: Tensor, count: number): void {
    if (!this.training || !this.config.trackRunningStats || this.statisticsFrozen) return;
    const { momentum } = this.config;
    tf.tidy(() => {
      const unbiased = tf.mul(variance, count / Math.max(count - 1, 1));
      const rm = this.buffer('running_mean');
      const rv = this.buffer('running_var');
      const nb = this.buffer('num_batches_tracked');
      rm.assign(tf.add(tf.mul(rm, 1 - momentum), tf.mul(mean, momentum)));
      rv.assign(tf.add(tf.mul(rv, 1 - momentum), tf.mul(unbiased, momentum)));
      nb.assign(tf.add(nb, tf.scalar(1, 'int32')));
    });
  }

  forward(x: Tensor): Tensor {
    const c = this.config.numFeatures;
    if (x.shape[x.rank - 1] !== c || x.rank < 2) this.expectShape(x, x.rank < 2 ? 4 : x.rank, { [Math.max(x.rank, 2) - 1]: c }, 'channels last');
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const useBatch = (this.training && !this.statisticsFrozen) || !this.config.trackRunningStats;
    const { eps } = this.config;
    // Batch statistics with a learned scale and shift: one op (fused kernels or a closed-form gradient).
    if (useBatch && this.weight && this.bias) return batchNormTraining(this, x, axes, this.weight.variable, this.bias.variable);
    return tf.tidy(() => {
      let mean: Tensor;
      let variance: Tensor;
      if (useBatch) {
        const m = tf.moments(x, axes);
        mean = m.mean;
        variance = m.variance;
        this.updateRunningStats(mean, variance, x.size / c);
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

/**
 * Batch normalisation with batch statistics and a learned scale and shift, as one differentiable
 * op whose gradient is the closed form (x̂ = (x − μ)/σ, m = values per channel):
 *
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/σ · (dy − dβ/m − x̂·dγ/m)
 *
 * instead of the tape of tfjs's moments and batchNorm ops (about three times the kernels: this
 * is most of a ResNet training step outside the convolutions). Running statistics are updated
 * as a side effect, from the same batch mean and variance.
 */
function batchNormTraining(layer: BatchNorm, x: Tensor, axes: number[], gamma: Tensor, beta: Tensor): Tensor {
  if (x.dtype === 'float32' && (x.rank === 4 || x.rank === 2) && hasFusedBatchNorm()) return fusedBatchNormTraining(layer, x, gamma, beta);
  const { eps, numFeatures: c } = layer.config;
  const m = x.size / c;
  const op = tf.customGrad((xIn, g, b, save) => {
    const xt = xIn as Tensor;
    const mean = tf.mean(xt, axes);
    const centred = tf.sub(xt, mean);
    const variance = tf.mean(tf.square(centred), axes);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const xHat = tf.mul(centred, invStd);
    layer.updateRunningStats(mean, variance, m);
    (save as unknown as (saved: Tensor[]) => void)([xHat, invStd, g as Tensor]);
    return {
      value: tf.add(tf.mul(xHat, g as Tensor), b as Tensor),
      gradFunc: (dy, saved) => {
        const [xh, inv, gm] = saved;
        const d = dy as Tensor;
        const dBeta = tf.sum(d, axes);
        const dGamma = tf.sum(tf.mul(d, xh), axes);
        const dx = tf.mul(tf.sub(tf.sub(d, tf.div(dBeta, m)), tf.mul(xh, tf.div(dGamma, m))), tf.mul(gm, inv));
        return [dx, dGamma, dBeta];
      },
    };
  });
  return op(x, gamma, beta) as Tensor;
}

/** Whether the active backend registers @kiln/core's fused batch-norm kernels (forward and gradient). */
function hasFusedBatchNorm(): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(BATCH_NORM_TRAINING_KERNEL, backend) != null && tf.getKernel(BATCH_NORM_TRAINING_GRAD_KERNEL, backend) != null;
}

/** {@link batchNormTraining} through the backend's fused kernels: one kernel each way. */
function fusedBatchNormTraining(layer: BatchNorm, x: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  const { eps: epsilon, numFeatures: c } = layer.config;
  const op = tf.customGrad((xIn, g, b, save) => {
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAINING_KERNEL, { x: xIn as Tensor, gamma: g as Tensor, beta: b as Tensor }, { epsilon }) as Tensor[];
    layer.updateRunningStats(mean, variance, (xIn as Tensor).size / c);
    (save as unknown as (saved: Tensor[]) => void)([xIn as Tensor, mean, variance, g as Tensor]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, mu, va, gm] = saved;
        return tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD_KERNEL, { x: xs, dy: dy as Tensor, mean: mu, variance: va, gamma: gm }, { epsilon }) as Tensor[];
      },
    };
  });
  return op(x, gamma, beta) as Tensor;
}

/** PyTorch's names for the same layer over [N, C], NLC and NHWC inputs. */
export class BatchNorm1d extends BatchNorm {}
/** {@link BatchNorm} under PyTorch's name for NHWC input. */
export class BatchNorm2d extends BatchNorm {}
