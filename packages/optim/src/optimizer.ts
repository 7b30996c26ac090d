import { tf, ConfigError, KilnError } from '@kiln/core';

/** Hyper-parameters shared by every optimizer's groups; each optimizer adds its own. */
export interface GroupHyper {
  lr: number;
  weightDecay: number;
  [key: string]: number | boolean | string;
}

/** A parameter group as given by the user: its variables and any per-group overrides. */
/** `H` types the overrides a group may carry (checked when the optimizer validates them). */
// eslint-disable-next-line @typescript-eslint/no-unused-vars
export interface ParamGroupInput<H extends GroupHyper = GroupHyper> {
  params: tf.Variable[];
  /** Shown in LR monitors (`backbone`, `head`). */
  name?: string;
  /** Overrides of the optimizer's defaults for this group. */
  [key: string]: unknown;
}

export interface ParamGroup<H extends GroupHyper = GroupHyper> {
  name: string;
  params: tf.Variable[];
  hyper: H;
  /** Learning rate the group started with; schedules scale from it. */
  initialLr: number;
}

export type Slots = Record<string, tf.Variable>;

/** Serializable optimizer state: slot tensors by `<paramIndex>.<slot>`, group hyper-parameters, step. */
export interface OptimizerState {
  step: number;
  groups: { name: string; hyper: GroupHyper; initialLr: number }[];
  slots: Record<string, tf.Tensor>;
}

/**
 * Base class of Kiln's optimizers. Bookkeeping — parameter groups, lazily created slot variables,
 * state dicts — lives here, so each optimizer is only its update rule (`updateParam`).
 * Updates run in `tf.tidy`, in place on the variables.
 */
export abstract class Optimizer<H extends GroupHyper = GroupHyper> {
  readonly paramGroups: ParamGroup<H>[];
  /** Number of `step()` calls so far. */
  stepCount = 0;
  private readonly slots = new Map<tf.Variable, Slots>();

  constructor(params: tf.Variable[] | ParamGroupInput<H>[], defaults: H) {
    this.validate(defaults, 'defaults');
    const groups: ParamGroupInput<H>[] =
      params.length > 0 && params[0] instanceof tf.Variable ? [{ params: params as tf.Variable[] }] : (params as ParamGroupInput<H>[]);
    const seen = new Set<tf.Variable>();
    this.paramGroups = groups.map((g, i) => {
      const hyper = { ...defaults } as H;
      for (const [k, v] of Object.entries(g)) if (k !== 'params' && k !== 'name' && v !== undefined) (hyper as Record<string, unknown>)[k] = v;
      this.validate(hyper, `paramGroups[${i}]`);
      for (const p of g.params) {
        if (seen.has(p)) throw new ConfigError(`paramGroups[${i}].params`, 'each parameter in exactly one group', `'${p.name}' appears twice`);
        seen.add(p);
      }
      return { name: g.name ?? `group${i}`, params: [...g.params], hyper, initialLr: hyper.lr };
    });
  }

  /** Throws `ConfigError` naming the argument when a hyper-parameter is out of range. */
  protected validate(h: H, where: string): void {
    if (!(Number.isFinite(h.lr) && h.lr >= 0)) throw new ConfigError(`${this.constructor.name}.${where}.lr`, 'a finite number >= 0', h.lr);
    if (!(Number.isFinite(h.weightDecay) && h.weightDecay >= 0)) throw new ConfigError(`${this.constructor.name}.${where}.weightDecay`, 'a finite number >= 0', h.weightDecay);
  }

  /** Applies one update given gradients keyed by variable name (as `tf.variableGrads` returns them). */
  step(grads: tf.NamedTensorMap): void {
    this.stepCount++;
    tf.tidy(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const g = grads[p.name];
          if (!g || !p.trainable) continue;
          this.updateParam(p, g, group.hyper, this.slotsFor(p), this.stepCount);
        }
      }
    });
  }

  /** Gradients are computed afresh each step in tfjs; kept for Lightning's hook order and accumulation. */
  zeroGrad(): void {}

  /** The update rule: assign the new value to `p` (and to its slots). */
  protected abstract updateParam(p: tf.Variable, g: tf.Tensor, h: H, slots: Slots, t: number): void;

  /** Slot names this optimizer keeps per parameter, created as zeros on first use. */
  protected abstract slotNames(h: H): string[];

  private slotsFor(p: tf.Variable): Slots {
    let s = this.slots.get(p);
    if (!s) {
      const group = this.paramGroups.find((g) => g.params.includes(p))!;
      s = {};
      for (const name of this.slotNames(group.hyper)) s[name] = tf.keep(tf.variable(tf.zerosLike(p), false));
      this.slots.set(p, s);
    }
    return s;
  }

  /** Learning rate of group i (0 by default). */
  getLr(group = 0): number {
    return this.paramGroups[group].hyper.lr;
  }

  setLr(lr: number, group?: number): void {
    if (!(Number.isFinite(lr) && lr >= 0)) throw new ConfigError('lr', 'a finite number >= 0', lr);
    for (const [i, g] of this.paramGroups.entries()) if (group === undefined || group === i) g.hyper.lr = lr;
  }

  private allParams(): tf.Variable[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  stateDict(): OptimizerState {
    const slots: Record<string, tf.Tensor> = {};
    this.allParams().forEach((p, i) => {
      const s = this.slots.get(p);
      if (s) for (const [k, v] of Object.entries(s)) slots[`${i}.${k}`] = v;
    });
    return {
      step: this.stepCount,
      groups: this.paramGroups.map((g) => ({ name: g.name, hyper: { ...g.hyper }, initialLr: g.initialLr })),
      slots,
    };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.groups.length !== this.paramGroups.length) {
      throw new KilnError('E_OPTIM_STATE', 'optimizer state has a different number of parameter groups', {
        expected: String(this.paramGroups.length),
        found: String(state.groups.length),
      });
    }
    state.groups.forEach((g, i) => {
      Object.assign(this.paramGroups[i].hyper, g.hyper);
      this.paramGroups[i].initialLr = g.initialLr;
    });
    this.stepCount = state.step;
    const params = this.allParams();
    for (const [key, t] of Object.entries(state.slots)) {
      const dot = key.indexOf('.');
      const p = params[Number(key.slice(0, dot))];
      const name = key.slice(dot + 1);
      if (!p) throw new KilnError('E_OPTIM_STATE', `optimizer state has slot '${key}' for a parameter that does not exist`);
      if (!tf.util.arraysEqual(p.shape, t.shape)) {
        throw new KilnError('E_OPTIM_STATE', `slot '${key}' has the wrong shape`, { expected: `[${p.shape}]`, found: `[${t.shape}]` });
      }
      const s = this.slotsFor(p);
      if (!s[name]) s[name] = tf.keep(tf.variable(tf.zerosLike(p), false));
      s[name].assign(t);
    }
  }

  dispose(): void {
    for (const s of this.slots.values()) for (const v of Object.values(s)) v.dispose();
    this.slots.clear();
  }
}
