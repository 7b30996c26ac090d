import { tf, ConfigError, KilnError } from '@kiln/core';

/** Hyper-parameters shared by every optimizer's groups; each optimizer adds its own. */
export interface GroupHyper {
  /** Learning rate η (>= 0). */
  lr: number;
  /** Weight decay λ (>= 0): L2 added to the gradient, or decoupled in AdamW. */
  weightDecay: number;
  [key: string]: number | boolean | string;
}

/** A parameter group as given by the user: its variables and any per-group overrides. */
/** `H` types the overrides a group may carry (checked when the optimizer validates them). */
// eslint-disable-next-line @typescript-eslint/no-unused-vars
export interface ParamGroupInput<H extends GroupHyper = GroupHyper> {
  /** The variables this group updates. */
  params: tf.Variable[];
  /** Shown in LR monitors (`backbone`, `head`). */
  name?: string;
  /** Overrides of the optimizer's defaults for this group. */
  [key: string]: unknown;
}

/** A parameter group as the optimizer holds it: defaults merged with the group's overrides. */
export interface ParamGroup<H extends GroupHyper = GroupHyper> {
  /** The group's name (`group0`, … unless given). */
  name: string;
  /** The variables it updates. */
  params: tf.Variable[];
  /** Its hyperparameters (learning rate, momentum, …) after overrides. */
  hyper: H;
  /** Learning rate the group started with; schedules scale from it. */
  initialLr: number;
}

/** An optimizer's per-parameter state variables (moments, momentum buffers) by slot name. */
export type Slots = Record<string, tf.Variable>;

/** One parameter's share of an update step, as `Optimizer.updateGroup` receives it. */
export interface ParamUpdate {
  /** The parameter to update. */
  param: tf.Variable;
  /** Its gradient this step. */
  grad: tf.Tensor;
  /** Its slots (`step` included, already counting this update). */
  slots: Slots;
  /** The number of updates it has received, this one included (1 on its first). */
  step: number;
}

/**
 * Serializable optimizer state: slot tensors by `<paramIndex>.<slot>`, group hyper-parameters and
 * the number of `step()` calls. Each parameter's own step count (which drives bias corrections and
 * differs from `step` for parameters that joined later, e.g. an unfrozen backbone) is the int32
 * scalar slot `<paramIndex>.step`, as in PyTorch's optimizer state.
 */
export interface OptimizerState {
  /** Number of `step()` calls. */
  step: number;
  /** Each group's name, hyperparameters and starting learning rate (not its variables). */
  groups: {
    /** The group's name. */
    name: string;
    /** Its hyperparameters when saved. */
    hyper: GroupHyper;
    /** The learning rate schedules scale from. */
    initialLr: number;
  }[];
  /** Slot tensors by `<paramIndex>.<slot>`. */
  slots: Record<string, tf.Tensor>;
}

/**
 * Base class of Kiln's optimizers. Bookkeeping — parameter groups, lazily created slot variables,
 * per-parameter step counts, state dicts — lives here, so each optimizer is only its update rule
 * (`updateParam`). Updates run in `tf.tidy`, in place on the variables.
 */
export abstract class Optimizer<H extends GroupHyper = GroupHyper> {
  /** The groups, in the order given; schedules and LR monitors read and set their rates here. */
  readonly paramGroups: ParamGroup<H>[];
  /** Number of `step()` calls so far. */
  stepCount = 0;
  private readonly slots = new Map<tf.Variable, Slots>();
  /** Updates applied to each parameter (mirrors its `step` slot, so the hot path never reads it back). */
  private readonly paramSteps = new Map<tf.Variable, number>();
  private readonly defaults: H;

  /**
   * @param params the variables to optimize, or groups of them with per-group overrides.
   * @param defaults hyper-parameters of every group that does not override them.
   * @param sharedGroups groups of another optimizer to drive instead (used by wrappers such as
   *   `Lookahead`, so that setting a rate on the wrapper sets it on the optimizer it wraps).
   */
  constructor(params: tf.Variable[] | ParamGroupInput<H>[], defaults: H, sharedGroups?: ParamGroup<H>[]) {
    this.defaults = { ...defaults };
    if (sharedGroups) {
      this.paramGroups = sharedGroups;
      return;
    }
    this.validate(defaults, 'defaults');
    const groups: ParamGroupInput<H>[] =
      params.length > 0 && params[0] instanceof tf.Variable ? [{ params: params as tf.Variable[] }] : (params as ParamGroupInput<H>[]);
    this.paramGroups = [];
    for (const g of groups) this.addParamGroup(g);
  }

  /**
   * Adds a group (e.g. a backbone unfrozen for fine-tuning) with its own overrides of the
   * optimizer's defaults. Its parameters start with fresh slots and step counts.
   */
  addParamGroup(group: ParamGroupInput<H>): ParamGroup<H> {
    const i = this.paramGroups.length;
    if (!group || !Array.isArray(group.params)) throw new ConfigError(`paramGroups[${i}].params`, 'a list of variables', group?.params);
    const hyper = { ...this.defaults };
    for (const [k, v] of Object.entries(group)) if (k !== 'params' && k !== 'name' && v !== undefined) (hyper as Record<string, unknown>)[k] = v;
    this.validate(hyper, `paramGroups[${i}]`);
    const seen = new Set(this.allParams());
    for (const p of group.params) {
      if (!(p instanceof tf.Variable)) throw new ConfigError(`paramGroups[${i}].params`, 'tf.Variable objects', p);
      if (seen.has(p)) throw new ConfigError(`paramGroups[${i}].params`, 'each parameter in exactly one group', `'${p.name}' appears twice`);
      seen.add(p);
    }
    const added: ParamGroup<H> = { name: group.name ?? `group${i}`, params: [...group.params], hyper, initialLr: hyper.lr };
    this.paramGroups.push(added);
    return added;
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
        const updates: ParamUpdate[] = [];
        for (const p of group.params) {
          const g = grads[p.name];
          if (!g || !p.trainable) continue;
          const s = this.slotsFor(p);
          const t = (this.paramSteps.get(p) ?? 0) + 1;
          this.paramSteps.set(p, t);
          s.step.assign(tf.scalar(t, 'int32'));
          updates.push({ param: p, grad: g, slots: s, step: t });
        }
        if (updates.length > 0) this.updateGroup(updates, group.hyper);
      }
    });
  }

  /**
   * Updates the parameters of one group that have a gradient this step: `updateParam` on each in
   * turn. Optimizers with a multi-parameter kernel (Adam) override it to update them in one call.
   */
  protected updateGroup(updates: ParamUpdate[], h: H): void {
    for (const u of updates) this.updateParam(u.param, u.grad, h, u.slots, u.step);
  }

  /** Gradients are computed afresh each step in tfjs; kept for Lightning's hook order and accumulation. */
  zeroGrad(): void {}

  /**
   * The update rule: assign the new value to `p` (and to its slots). `t` is the number of updates
   * `p` has received, this one included (1 on its first).
   */
  protected abstract updateParam(p: tf.Variable, g: tf.Tensor, h: H, slots: Slots, t: number): void;

  /** Slot names this optimizer keeps per parameter, created on first use (see `initialSlot`). */
  protected abstract slotNames(h: H): string[];

  /** The slots of `p` (its `step` count included), created on first use. */
  protected slotsFor(p: tf.Variable): Slots {
    let s = this.slots.get(p);
    if (!s) {
      const group = this.groupOf(p);
      s = { step: tf.keep(tf.tidy(() => tf.variable(tf.scalar(0, 'int32'), false))) };
      for (const name of this.slotNames(group.hyper)) s[name] = this.newSlot(name, p, group.hyper);
      this.slots.set(p, s);
    }
    return s;
  }

  private groupOf(p: tf.Variable): ParamGroup<H> {
    const group = this.paramGroups.find((g) => g.params.includes(p));
    if (!group) throw new KilnError('E_OPTIM_STATE', `parameter '${p.name}' is in no parameter group of this optimizer`);
    return group;
  }

  /** A slot variable, kept across tidy scopes; its initial tensor is freed with the scope. */
  private newSlot(name: string, p: tf.Variable, h: H): tf.Variable {
    return tf.keep(tf.tidy(() => tf.variable(this.initialSlot(name, p, h), false)));
  }

  /** Value a slot starts from: zeros, unless an optimizer needs otherwise (AdaGrad's accumulator). */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected initialSlot(name: string, p: tf.Variable, h: H): tf.Tensor {
    return tf.zerosLike(p);
  }

  /** Forgets every slot and step count, as if no step had been taken. */
  clearState(): void {
    this.dropSlots();
    this.stepCount = 0;
  }

  /** Not overridable: `loadStateDict` must not reach a wrapper's `clearState` (Lookahead's clears its inner optimizer). */
  private dropSlots(): void {
    for (const s of this.slots.values()) for (const v of Object.values(s)) v.dispose();
    this.slots.clear();
    this.paramSteps.clear();
  }

  /** Learning rate of group i (0 by default). */
  getLr(group = 0): number {
    return this.paramGroups[group].hyper.lr;
  }

  /** Sets the learning rate of one group (by index) or of every group. */
  setLr(lr: number, group?: number): void {
    if (!(Number.isFinite(lr) && lr >= 0)) throw new ConfigError('lr', 'a finite number >= 0', lr);
    for (const [i, g] of this.paramGroups.entries()) if (group === undefined || group === i) g.hyper.lr = lr;
  }

  /** Every parameter of every group, in the order `stateDict()` numbers them. */
  protected allParams(): tf.Variable[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The live state: the slot tensors are the optimizer's own (copy them to keep a snapshot). */
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

  /**
   * Restores `stateDict()`'s output (copies the tensors; the caller still owns them). A parameter
   * whose `step` slot is missing (state saved before per-parameter counts) takes `state.step`.
   */
  loadStateDict(state: OptimizerState): void {
    if (state.groups.length !== this.paramGroups.length) {
      throw new KilnError('E_OPTIM_STATE', 'optimizer state has a different number of parameter groups', {
        expected: String(this.paramGroups.length),
        found: String(state.groups.length),
      });
    }
    const params = this.allParams();
    for (const [key, t] of Object.entries(state.slots)) {
      const dot = key.indexOf('.');
      const p = params[Number(key.slice(0, dot))];
      const name = key.slice(dot + 1);
      if (!p) throw new KilnError('E_OPTIM_STATE', `optimizer state has slot '${key}' for a parameter that does not exist`);
      const shape = name === 'step' ? [] : p.shape;
      if (!tf.util.arraysEqual(shape, t.shape)) {
        throw new KilnError('E_OPTIM_STATE', `slot '${key}' has the wrong shape`, { expected: `[${shape}]`, found: `[${t.shape}]` });
      }
    }
    state.groups.forEach((g, i) => {
      Object.assign(this.paramGroups[i].hyper, g.hyper);
      this.paramGroups[i].initialLr = g.initialLr;
    });
    this.dropSlots();
    this.stepCount = state.step;
    for (const [key, t] of Object.entries(state.slots)) {
      const dot = key.indexOf('.');
      const p = params[Number(key.slice(0, dot))];
      const name = key.slice(dot + 1);
      const s = this.slotsFor(p);
      if (name === 'step') {
        this.setParamStep(p, Math.round(t.dataSync()[0]));
        continue;
      }
      if (!s[name]) s[name] = this.newSlot(name, p, this.groupOf(p).hyper);
      s[name].assign(t);
    }
    for (const p of this.slots.keys()) {
      if (!state.slots[`${params.indexOf(p)}.step`]) this.setParamStep(p, state.step);
    }
  }

  private setParamStep(p: tf.Variable, t: number): void {
    this.paramSteps.set(p, t);
    tf.tidy(() => this.slotsFor(p).step.assign(tf.scalar(t, 'int32')));
  }

  /** Frees the slot variables (the parameters belong to the model). */
  dispose(): void {
    this.clearState();
  }
}
