import { tf, ConfigError } from '@kiln/core';
import { Optimizer, type GroupHyper, type OptimizerState, type ParamGroup, type ParamGroupInput, type Slots } from './optimizer.js';

/** Options of `Lookahead`. */
export interface LookaheadOptions {
  /** Fast steps between synchronisations with the slow weights. Default 5. */
  k?: number;
  /** How far the slow weights move towards the fast ones at each synchronisation, in (0, 1]. Default 0.5. */
  alpha?: number;
}

const SLOW = 'lookahead_slow';

/**
 * Lookahead (Zhang et al., 2019) around any optimizer: the inner optimizer takes k "fast" steps,
 * then the slow weights φ (starting at the initial parameters) move part of the way towards the
 * fast weights θ, and θ restarts from there:
 *   every k steps:  φ ← φ + α(θ − φ);  θ ← φ.
 * The wrapper shares the inner optimizer's parameter groups, so setting its learning rate (or
 * scheduling it) drives the inner optimizer; its state dict holds both optimizers' state.
 */
export class Lookahead<H extends GroupHyper = GroupHyper> extends Optimizer<H> {
  /** Fast steps between synchronisations. */
  readonly k: number;
  /** Step size of the slow weights towards the fast ones. */
  readonly alpha: number;

  /** The optimizer taking the fast steps. */
  readonly inner: Optimizer<H>;

  constructor(inner: Optimizer<H>, options: LookaheadOptions = {}) {
    super([], (checkedInner(inner).paramGroups[0]?.hyper ?? {}) as H, inner.paramGroups);
    this.inner = inner;
    const { k = 5, alpha = 0.5 } = options;
    if (!(Number.isInteger(k) && k >= 1)) throw new ConfigError('Lookahead.k', 'an integer >= 1', k);
    if (!(alpha > 0 && alpha <= 1)) throw new ConfigError('Lookahead.alpha', 'a number in (0, 1]', alpha);
    this.k = k;
    this.alpha = alpha;
  }

  /** Adds the group to the inner optimizer (the groups are shared), validated by its rules. */
  override addParamGroup(group: ParamGroupInput<H>): ParamGroup<H> {
    return this.inner.addParamGroup(group);
  }

  override step(grads: tf.NamedTensorMap): void {
    // Slow weights are created from the parameters as they are before the first fast step.
    for (const p of this.allParams()) if (grads[p.name] && p.trainable) this.slotsFor(p);
    this.inner.step(grads);
    super.step(grads);
  }

  protected slotNames(): string[] {
    return [SLOW];
  }

  protected override initialSlot(_name: string, p: tf.Variable): tf.Tensor {
    return tf.clone(p);
  }

  /** Runs after the inner optimizer's step: synchronises every k-th step. */
  protected updateParam(p: tf.Variable, _g: tf.Tensor, _h: H, s: Slots, t: number): void {
    if (t % this.k !== 0) return;
    const slow = tf.add(s[SLOW], tf.mul(tf.sub(p, s[SLOW]), this.alpha));
    s[SLOW].assign(slow);
    p.assign(slow);
  }

  override stateDict(): OptimizerState {
    const own = super.stateDict();
    return { ...own, slots: { ...this.inner.stateDict().slots, ...own.slots } };
  }

  override loadStateDict(state: OptimizerState): void {
    const innerSlots: Record<string, tf.Tensor> = {};
    const own: Record<string, tf.Tensor> = {};
    // Both optimizers count each parameter's steps in a `<i>.step` slot, always equal: the one key serves both.
    for (const [key, t] of Object.entries(state.slots)) {
      if (!key.endsWith(`.${SLOW}`)) innerSlots[key] = t;
      if (key.endsWith(`.${SLOW}`) || key.endsWith('.step')) own[key] = t;
    }
    this.inner.loadStateDict({ ...state, slots: innerSlots });
    super.loadStateDict({ ...state, slots: own });
  }

  override clearState(): void {
    this.inner.clearState();
    super.clearState();
  }
}

function checkedInner<H extends GroupHyper>(inner: Optimizer<H>): Optimizer<H> {
  if (!(inner instanceof Optimizer)) throw new ConfigError('Lookahead.inner', 'a Kiln optimizer', inner);
  return inner;
}
