import { tf } from '@kiln/core';
import { Module, type Tensor } from '@kiln/layers';

/** Options of {@link LocalResponseNorm}; the defaults are AlexNet's (Krizhevsky et al., 2012, §3.3). */
export interface LocalResponseNormOptions {
  /** Number of neighbouring channels summed over, centred on each channel (n). Default 5. */
  size?: number;
  /** Scale of the sum of squares (α), applied per channel as in the paper. Default 1e-4. */
  alpha?: number;
  /** Exponent (β). Default 0.75. */
  beta?: number;
  /** Additive constant (k). Default 2. */
  k?: number;
}

/**
 * Local response normalisation across channels, the paper's formula
 * b_c = a_c / (k + α·Σ_{c' ∈ [c−n/2, c+n/2]} a_{c'}²)^β
 * (PyTorch's `LocalResponseNorm(size, alpha, beta, k)` divides α by n; pass α·n there for the same
 * result). Built from elementary ops so it runs and differentiates on every backend.
 */
export class LocalResponseNorm extends Module {
  readonly config: Required<LocalResponseNormOptions>;

  constructor(options: LocalResponseNormOptions = {}) {
    super();
    this.config = { size: 5, alpha: 1e-4, beta: 0.75, k: 2, ...options };
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    const { size, alpha, beta, k } = this.config;
    const c = x.shape[3] as number;
    const before = Math.floor((size - 1) / 2);
    const after = size - 1 - before;
    return tf.tidy(() => {
      const sq = tf.pad(tf.square(x), [
        [0, 0],
        [0, 0],
        [0, 0],
        [before, after],
      ]);
      let sum = tf.slice(sq, [0, 0, 0, 0], [-1, -1, -1, c]);
      for (let i = 1; i < size; i++) sum = tf.add(sum, tf.slice(sq, [0, 0, 0, i], [-1, -1, -1, c]));
      return tf.div(x, tf.pow(tf.add(tf.mul(sum, alpha), k), beta));
    });
  }
}
