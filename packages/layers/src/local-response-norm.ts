import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from './module.js';

/** Options of `LocalResponseNorm`. */
export interface LocalResponseNormOptions {
  /** Number of neighbouring channels in each window (AlexNet: 5). */
  size: number;
  /** Scale α (AlexNet: 1e-4); see `alphaConvention` for whether it is divided by `size`. Default 1e-4. */
  alpha?: number;
  /**
   * How α scales the windowed sum of squares. `'pytorch'` (default): α/n, as PyTorch and Caffe
   * apply it; `'paper'`: α itself, as Krizhevsky et al. (2012, §3.3) write the formula. The two
   * agree when α is multiplied by n for `'pytorch'`.
   */
  alphaConvention?: 'pytorch' | 'paper';
  /** Exponent β (AlexNet: 0.75). Default 0.75. */
  beta?: number;
  /** Additive constant k (AlexNet: 2; PyTorch's default 1). Default 1. */
  k?: number;
}

/**
 * Local response normalisation across channels (Krizhevsky et al., 2012), PyTorch semantics:
 * b_c = a_c / (k + α/n · Σ_{c'} a_{c'}²)^β, where the window holds channels c − ⌊n/2⌋ … c + ⌊(n−1)/2⌋
 * (zero beyond the edges); with `alphaConvention: 'paper'` the sum is scaled by α itself.
 * Input is channels-last (NHWC, NLC or [N, C]).
 *
 * The windowed channel sum is a product with a banded 0/1 matrix, so forward and backward are one
 * matrix multiplication each, on any backend.
 */
export class LocalResponseNorm extends Module {
  /** The options with every default filled in. */
  readonly config: Required<LocalResponseNormOptions>;

  constructor(options: LocalResponseNormOptions | number) {
    super();
    const o = typeof options === 'number' ? { size: options } : options;
    if (!Number.isInteger(o.size) || o.size < 1) throw new ConfigError('LocalResponseNorm.size', 'a positive integer', o.size);
    this.config = { alpha: 1e-4, beta: 0.75, k: 1, alphaConvention: 'pytorch', ...o };
    if (this.config.alphaConvention !== 'pytorch' && this.config.alphaConvention !== 'paper') {
      throw new ConfigError('LocalResponseNorm.alphaConvention', "'pytorch' (α/n) or 'paper' (α)", this.config.alphaConvention);
    }
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 2) this.expectShape(x, 4, {}, 'NHWC');
    const c = x.shape[x.rank - 1];
    const { size, alpha, beta, k, alphaConvention } = this.config;
    const scale = alphaConvention === 'paper' ? alpha : alpha / size;
    const before = Math.floor(size / 2);
    const after = Math.floor((size - 1) / 2);
    const band = new Float32Array(c * c);
    // band[src, dst] = 1 when channel src lies in the window of dst.
    for (let dst = 0; dst < c; dst++) {
      for (let src = Math.max(0, dst - before); src <= Math.min(c - 1, dst + after); src++) band[src * c + dst] = 1;
    }
    return tf.tidy(() => {
      const sq = tf.reshape(tf.square(x), [-1, c]);
      const sums = tf.reshape(tf.matMul(sq as tf.Tensor2D, tf.tensor2d(band, [c, c])), x.shape);
      const denom = tf.pow(tf.add(tf.mul(sums, scale), k), beta);
      return tf.div(x, denom);
    });
  }
}
