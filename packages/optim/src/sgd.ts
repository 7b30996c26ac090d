import { tf, ConfigError, SGD_UPDATE_KERNEL } from '@kiln/core';
import { canFuse } from './fused.js';
import { Optimizer, type GroupHyper, type ParamGroupInput, type Slots } from './optimizer.js';

export interface SgdHyper extends GroupHyper {
  /** Momentum factor μ (0 disables the momentum buffer). Default 0. */
  momentum: number;
  /** Dampening τ of the gradient added to the buffer, in [0, 1]. Default 0. */
  dampening: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov: boolean;
}

/**
 * Stochastic gradient descent with momentum (PyTorch's formulation):
 *   g ← g + λ·p;  b ← μ·b + (1−τ)·g  (b = g on the first step);
 *   p ← p − η·(g + μ·b) with Nesterov, else p ← p − η·b.
 */
export class SGD extends Optimizer<SgdHyper> {
  constructor(params: tf.Variable[] | ParamGroupInput<SgdHyper>[], options: Partial<SgdHyper> = {}) {
    super(params, { lr: 0.01, weightDecay: 0, momentum: 0, dampening: 0, nesterov: false, ...options });
  }

  protected override validate(h: SgdHyper, where: string): void {
    super.validate(h, where);
    if (!(h.momentum >= 0)) throw new ConfigError(`SGD.${where}.momentum`, 'a number >= 0', h.momentum);
    if (!(h.dampening >= 0 && h.dampening <= 1)) throw new ConfigError(`SGD.${where}.dampening`, 'a number in [0, 1]', h.dampening);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) throw new ConfigError(`SGD.${where}.nesterov`, 'momentum > 0 and dampening 0', { momentum: h.momentum, dampening: h.dampening });
  }

  protected slotNames(h: SgdHyper): string[] {
    return h.momentum > 0 ? ['momentum_buffer'] : [];
  }

  protected updateParam(p: tf.Variable, grad: tf.Tensor, h: SgdHyper, s: Slots, t: number): void {
    if (canFuse(SGD_UPDATE_KERNEL, p, grad)) {
      const inputs: Record<string, tf.Tensor> = { param: p, grad };
      if (h.momentum > 0) inputs.momentumBuffer = s.momentum_buffer;
      const attrs = { lr: h.lr, weightDecay: h.weightDecay, momentum: h.momentum, dampening: h.dampening, nesterov: h.nesterov, first: t === 1 };
      const [param, buffer] = tf.engine().runKernel(SGD_UPDATE_KERNEL, inputs, attrs) as tf.Tensor[];
      p.assign(param);
      if (h.momentum > 0) s.momentum_buffer.assign(buffer);
      return;
    }
    let g = h.weightDecay ? tf.add(grad, tf.mul(p, h.weightDecay)) : grad;
    if (h.momentum > 0) {
      const b = t === 1 ? g : tf.add(tf.mul(s.momentum_buffer, h.momentum), tf.mul(g, 1 - h.dampening));
      s.momentum_buffer.assign(b);
      g = h.nesterov ? tf.add(g, tf.mul(b, h.momentum)) : b;
    }
    p.assign(tf.sub(p, tf.mul(g, h.lr)));
  }
}
