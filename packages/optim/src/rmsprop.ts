import { tf, ConfigError } from '@kiln/core';
import { Optimizer, type GroupHyper, type ParamGroupInput, type Slots } from './optimizer.js';

export interface RmspropHyper extends GroupHyper {
  /** Decay of the running average of squared gradients (PyTorch's `alpha`, Keras' `rho`). Default 0.99. */
  alpha: number;
  /** Added to the denominator for stability. Default 1e-8. */
  eps: number;
  /** Momentum of the scaled update (0 disables it). Default 0. */
  momentum: number;
  /** Normalise by the estimated variance instead of the raw second moment. Default false. */
  centered: boolean;
}

/** RMSprop options; `rho` is accepted as another name for `alpha`. */
export type RmspropOptions = Partial<RmspropHyper> & {
  /** Keras' name for `alpha`. */
  rho?: number;
};

/**
 * RMSprop (Hinton, lecture 6e), in PyTorch's formulation:
 *   g ← g + λ·p;  s ← α·s + (1−α)·g²;  centered: ḡ ← α·ḡ + (1−α)·g, d = √(s − ḡ²) + ε, else d = √s + ε;
 *   momentum μ > 0: b ← μ·b + g/d, p ← p − η·b;  otherwise p ← p − η·g/d.
 */
export class RMSprop extends Optimizer<RmspropHyper> {
  constructor(params: tf.Variable[] | ParamGroupInput<RmspropHyper>[], options: RmspropOptions = {}) {
    const { rho, ...rest } = options;
    super(params, { lr: 0.01, weightDecay: 0, alpha: rho ?? 0.99, eps: 1e-8, momentum: 0, centered: false, ...rest });
  }

  protected override validate(h: RmspropHyper, where: string): void {
    super.validate(h, where);
    if (!(h.alpha >= 0 && h.alpha <= 1)) throw new ConfigError(`RMSprop.${where}.alpha`, 'a number in [0, 1]', h.alpha);
    if (!(h.eps >= 0)) throw new ConfigError(`RMSprop.${where}.eps`, 'a number >= 0', h.eps);
    if (!(h.momentum >= 0)) throw new ConfigError(`RMSprop.${where}.momentum`, 'a number >= 0', h.momentum);
  }

  protected slotNames(h: RmspropHyper): string[] {
    return ['square_avg', ...(h.centered ? ['grad_avg'] : []), ...(h.momentum > 0 ? ['momentum_buffer'] : [])];
  }

  protected updateParam(p: tf.Variable, grad: tf.Tensor, h: RmspropHyper, s: Slots): void {
    const g = h.weightDecay ? tf.add(grad, tf.mul(p, h.weightDecay)) : grad;
    const sq = tf.add(tf.mul(s.square_avg, h.alpha), tf.mul(tf.square(g), 1 - h.alpha));
    s.square_avg.assign(sq);
    let variance: tf.Tensor = sq;
    if (h.centered) {
      const ga = tf.add(tf.mul(s.grad_avg, h.alpha), tf.mul(g, 1 - h.alpha));
      s.grad_avg.assign(ga);
      variance = tf.sub(sq, tf.square(ga));
    }
    const scaled = tf.div(g, tf.add(tf.sqrt(variance), h.eps));
    let update = scaled;
    if (h.momentum > 0) {
      update = tf.add(tf.mul(s.momentum_buffer, h.momentum), scaled);
      s.momentum_buffer.assign(update);
    }
    p.assign(tf.sub(p, tf.mul(update, h.lr)));
  }
}
