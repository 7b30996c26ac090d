import { tf, defaultRng, ConfigError, type Rng } from '@kiln/core';
import { Module, type Tensor } from './module.js';

/**
 * Inverted dropout (Srivastava et al., 2014): while training, zeroes each value with probability p
 * and scales survivors by 1/(1-p) so the expected activation is unchanged; identity in eval mode.
 * Masks are seeded from the generator, so a seeded run drops the same units.
 */
export class Dropout extends Module {
  constructor(
    /** Probability of zeroing each value while training. */
    readonly p = 0.5,
    private readonly rng?: Rng,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new ConfigError('Dropout.p', 'a probability in [0, 1)', p);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return tf.clone(x);
    const seed = (this.rng ?? defaultRng()).seed();
    return tf.tidy(() => {
      const keep = tf.step(tf.sub(tf.randomUniform(x.shape, 0, 1, 'float32', seed), this.p));
      return tf.mul(x, tf.mul(keep, 1 / (1 - this.p)));
    });
  }
}
