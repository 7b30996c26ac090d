import { tf } from '@kiln/core';
import { Adam, type AdamHyper } from './adam.js';
import type { ParamGroupInput, Slots } from './optimizer.js';

/** RAdam's hyper-parameters: Adam's, without AMSGrad. */
export type RadamHyper = AdamHyper;

/**
 * RAdam (Liu et al., 2020): Adam whose adaptive step is switched on only once the variance of
 * the adaptive rate is tractable, and then rectified. With ρ∞ = 2/(1−β₂) − 1 and
 * ρₜ = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ):
 *   ρₜ > 5:  p ← p − η · m̂ · r · √(1−β₂ᵗ)/(√v + ε),  r = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ));
 *   else:    p ← p − η · m̂   (momentum SGD while the variance estimate is unreliable).
 * m̂ = m/(1−β₁ᵗ); weight decay is folded into the gradient, as in PyTorch 1.13.
 */
export class RAdam extends Adam {
  constructor(params: tf.Variable[] | ParamGroupInput<RadamHyper>[], options: Partial<Omit<RadamHyper, 'amsgrad'>> = {}) {
    super(params, { ...options, amsgrad: false });
  }

  protected override updateParam(p: tf.Variable, grad: tf.Tensor, h: RadamHyper, s: Slots, t: number): void {
    const g = this.decay(p, grad, h);
    const m = tf.add(tf.mul(s.exp_avg, h.beta1), tf.mul(g, 1 - h.beta1));
    const v = tf.add(tf.mul(s.exp_avg_sq, h.beta2), tf.mul(tf.square(g), 1 - h.beta2));
    s.exp_avg.assign(m);
    s.exp_avg_sq.assign(v);
    const bc1 = 1 - Math.pow(h.beta1, t);
    const bc2 = 1 - Math.pow(h.beta2, t);
    const mHat = tf.div(m, bc1);
    const rhoInf = 2 / (1 - h.beta2) - 1;
    const rhoT = rhoInf - (2 * t * Math.pow(h.beta2, t)) / bc2;
    if (rhoT > 5) {
      const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
      const adaptive = tf.div(Math.sqrt(bc2), tf.add(tf.sqrt(v), h.eps));
      p.assign(tf.sub(p, tf.mul(tf.mul(mHat, adaptive), h.lr * rect)));
    } else {
      p.assign(tf.sub(p, tf.mul(mHat, h.lr)));
    }
  }
}
