import { tf } from '@kiln/core';
import { Adam, type AdamHyper } from './adam.js';
import type { ParamGroupInput } from './optimizer.js';

/**
 * AdamW (Loshchilov & Hutter, 2019): Adam with weight decay decoupled from the gradient, so the
 * decay is not rescaled by the adaptive denominator:
 *   p ← p·(1 − η·λ), then the Adam update with the raw gradient.
 * Default `weightDecay` 0.01, as PyTorch's.
 */
export class AdamW extends Adam {
  constructor(params: tf.Variable[] | ParamGroupInput<AdamHyper>[], options: Partial<AdamHyper> = {}) {
    super(params, { weightDecay: 0.01, ...options });
  }

  /** Decoupled decay for the backend's fused update, unless a subclass changed `decay`. */
  protected override decayMode(): 'l2' | 'decoupled' | undefined {
    return this.decay === AdamW.prototype.decay ? 'decoupled' : undefined;
  }

  protected override decay(p: tf.Variable, g: tf.Tensor, h: AdamHyper): tf.Tensor {
    if (h.weightDecay) p.assign(tf.mul(p, 1 - h.lr * h.weightDecay));
    return g;
  }
}
