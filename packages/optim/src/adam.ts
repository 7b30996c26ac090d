import { tf, ADAM_UPDATE_KERNEL, ADAM_UPDATE_MULTI_KERNEL, ConfigError } from '@kiln/core';
import { canFuse } from './fused.js';
import { Optimizer, type GroupHyper, type ParamGroupInput, type ParamUpdate, type Slots } from './optimizer.js';

export interface AdamHyper extends GroupHyper {
  /** Decay β₁ of the first-moment average, in [0, 1). Default 0.9. */
  beta1: number;
  /** Decay β₂ of the second-moment average, in [0, 1). Default 0.999. */
  beta2: number;
  /** Added to the denominator for stability. Default 1e-8. */
  eps: number;
  /** Normalise by the running maximum of the second moment (Reddi et al., 2018). Default false. */
  amsgrad: boolean;
}

/**
 * Adam (Kingma & Ba, 2015), bias-corrected, with L2 weight decay folded into the gradient
 * (use AdamW for decoupled decay):
 *   g ← g + λ·p;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
 *   p ← p − η · (m / (1−β₁ᵗ)) / (√(v̂ / (1−β₂ᵗ)) + ε),  v̂ = max(v̂, v) with AMSGrad, else v.
 */
export class Adam extends Optimizer<AdamHyper> {
  constructor(params: tf.Variable[] | ParamGroupInput<AdamHyper>[], options: Partial<AdamHyper> = {}) {
    super(params, { lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false, ...options });
  }

  protected override validate(h: AdamHyper, where: string): void {
    super.validate(h, where);
    const name = this.constructor.name;
    if (!(h.beta1 >= 0 && h.beta1 < 1)) throw new ConfigError(`${name}.${where}.beta1`, 'a number in [0, 1)', h.beta1);
    if (!(h.beta2 >= 0 && h.beta2 < 1)) throw new ConfigError(`${name}.${where}.beta2`, 'a number in [0, 1)', h.beta2);
    if (!(h.eps >= 0)) throw new ConfigError(`${name}.${where}.eps`, 'a number >= 0', h.eps);
  }

  protected slotNames(h: AdamHyper): string[] {
    return h.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
  }

  /** Adam folds weight decay into the gradient; AdamW overrides this to decay the weights directly. */
  protected decay(p: tf.Variable, g: tf.Tensor, h: AdamHyper): tf.Tensor {
    return h.weightDecay ? tf.add(g, tf.mul(p, h.weightDecay)) : g;
  }

  /**
   * How {@link decay} applies weight decay, for backends with a fused Adam update (one kernel per
   * parameter); undefined, and the op-by-op update, when a subclass changed `decay`.
   */
  protected decayMode(): 'l2' | 'decoupled' | undefined {
    return this.decay === Adam.prototype.decay ? 'l2' : undefined;
  }

  /**
   * With a backend that registers `ADAM_UPDATE_MULTI_KERNEL`, the whole group in one kernel call
   * (each parameter's result bit for bit the per-parameter kernel's); otherwise, and for subclasses
   * that change `updateParam` or `decay`, one `updateParam` per parameter.
   */
  protected override updateGroup(updates: ParamUpdate[], h: AdamHyper): void {
    const mode = this.decayMode();
    // A subclass with its own rule (RAdam) updates parameter by parameter.
    const adamRule = this.updateParam === Adam.prototype.updateParam;
    if (!mode || !adamRule || updates.length < 2 || !canFuse(ADAM_UPDATE_MULTI_KERNEL, ...updates.flatMap((u) => [u.param, u.grad]))) {
      super.updateGroup(updates, h);
      return;
    }
    const inputs: Record<string, tf.Tensor> = {};
    updates.forEach(({ param, grad, slots }, i) => {
      Object.assign(inputs, { [`param${i}`]: param, [`grad${i}`]: grad, [`expAvg${i}`]: slots.exp_avg, [`expAvgSq${i}`]: slots.exp_avg_sq });
      if (h.amsgrad) inputs[`maxExpAvgSq${i}`] = slots.max_exp_avg_sq;
    });
    const attrs = { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay, decoupled: mode === 'decoupled', count: updates.length, steps: updates.map((u) => u.step) };
    const outs = tf.engine().runKernel(ADAM_UPDATE_MULTI_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    let k = 0;
    for (const { param, slots } of updates) {
      param.assign(outs[k++]);
      slots.exp_avg.assign(outs[k++]);
      slots.exp_avg_sq.assign(outs[k++]);
      if (h.amsgrad) slots.max_exp_avg_sq.assign(outs[k++]);
    }
  }

  protected updateParam(p: tf.Variable, grad: tf.Tensor, h: AdamHyper, s: Slots, t: number): void {
    const mode = this.decayMode();
    if (mode && canFuse(ADAM_UPDATE_KERNEL, p, grad)) {
      const inputs: Record<string, tf.Tensor> = { param: p, grad, expAvg: s.exp_avg, expAvgSq: s.exp_avg_sq };
      if (h.amsgrad) inputs.maxExpAvgSq = s.max_exp_avg_sq;
      const attrs = { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay, decoupled: mode === 'decoupled', step: t };
      const [param, expAvg, expAvgSq, maxExpAvgSq] = tf.engine().runKernel(ADAM_UPDATE_KERNEL, inputs, attrs) as tf.Tensor[];
      p.assign(param);
      s.exp_avg.assign(expAvg);
      s.exp_avg_sq.assign(expAvgSq);
      if (h.amsgrad) s.max_exp_avg_sq.assign(maxExpAvgSq);
      return;
    }
    const g = this.decay(p, grad, h);
    const m = tf.add(tf.mul(s.exp_avg, h.beta1), tf.mul(g, 1 - h.beta1));
    const v = tf.add(tf.mul(s.exp_avg_sq, h.beta2), tf.mul(tf.square(g), 1 - h.beta2));
    s.exp_avg.assign(m);
    s.exp_avg_sq.assign(v);
    let vHat: tf.Tensor = v;
    if (h.amsgrad) {
      vHat = tf.maximum(s.max_exp_avg_sq, v);
      s.max_exp_avg_sq.assign(vHat);
    }
    const bc1 = 1 - Math.pow(h.beta1, t);
    const bc2 = 1 - Math.pow(h.beta2, t);
    const denom = tf.add(tf.div(tf.sqrt(vHat), Math.sqrt(bc2)), h.eps);
    p.assign(tf.sub(p, tf.mul(tf.div(m, denom), h.lr / bc1)));
  }
}
