import { tf, ConfigError } from '@kiln/core';
import { Optimizer, type GroupHyper, type ParamGroupInput, type Slots } from './optimizer.js';

export interface AdagradHyper extends GroupHyper {
  /** Decay of the step size with the step count t: η / (1 + (t−1)·lrDecay). Default 0. */
  lrDecay: number;
  /** Starting value of the accumulated squared gradients. Default 0. */
  initialAccumulatorValue: number;
  /** Added to the denominator for stability. Default 1e-10. */
  eps: number;
}

/**
 * AdaGrad (Duchi et al., 2011), in PyTorch's formulation:
 *   g ← g + λ·p;  s ← s + g²;  p ← p − η/(1 + (t−1)·δ) · g / (√s + ε).
 */
export class Adagrad extends Optimizer<AdagradHyper> {
  constructor(params: tf.Variable[] | ParamGroupInput<AdagradHyper>[], options: Partial<AdagradHyper> = {}) {
    super(params, { lr: 0.01, weightDecay: 0, lrDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, ...options });
  }

  protected override validate(h: AdagradHyper, where: string): void {
    super.validate(h, where);
    if (!(h.lrDecay >= 0)) throw new ConfigError(`Adagrad.${where}.lrDecay`, 'a number >= 0', h.lrDecay);
    if (!(h.initialAccumulatorValue >= 0)) throw new ConfigError(`Adagrad.${where}.initialAccumulatorValue`, 'a number >= 0', h.initialAccumulatorValue);
    if (!(h.eps >= 0)) throw new ConfigError(`Adagrad.${where}.eps`, 'a number >= 0', h.eps);
  }

  protected slotNames(): string[] {
    return ['sum'];
  }

  protected override initialSlot(_name: string, p: tf.Variable, h: AdagradHyper): tf.Tensor {
    return tf.fill(p.shape, h.initialAccumulatorValue);
  }

  protected updateParam(p: tf.Variable, grad: tf.Tensor, h: AdagradHyper, s: Slots, t: number): void {
    const g = h.weightDecay ? tf.add(grad, tf.mul(p, h.weightDecay)) : grad;
    const sum = tf.add(s.sum, tf.square(g));
    s.sum.assign(sum);
    const clr = h.lr / (1 + (t - 1) * h.lrDecay);
    p.assign(tf.sub(p, tf.mul(tf.div(g, tf.add(tf.sqrt(sum), h.eps)), clr)));
  }
}
