import { tf, KilnError, ShapeMismatchError, type Tensor } from '@kiln/core';
import { Parameter } from './parameter.js';

/** Re-exported so layer code can take `Tensor` from one place; it is `@kiln/core`'s (TensorFlow.js's) type. */
export type { Tensor };

/** Options of `Module.freeze`. */
export interface FreezeOptions {
  /**
   * Leave batch-norm layers trainable and updating their running statistics (Lightning's
   * `train_bn=True`). Default false: they are frozen too and normalise with their statistics.
   */
  trainBn?: boolean;
}

/** One mismatch between a state dict and a module. */
export interface StateDictProblem {
  /** The state-dict key concerned. */
  key: string;
  /** Missing from the state dict, not in the module, or present with another shape. */
  kind: 'missing' | 'unexpected' | 'shape';
  /** The shape the module has (for `shape`). */
  expected?: number[];
  /** The shape the state dict had (for `shape`). */
  found?: number[];
}

/** A state dict that does not fit the module: lists every missing, unexpected or mis-shaped key. */
export class StateDictMismatchError extends KilnError {
  /** Every mismatch found, not only the first. */
  readonly problems: StateDictProblem[];
  constructor(problems: StateDictProblem[], where = 'loadStateDict') {
    const lines = problems.map((p) =>
      p.kind === 'shape' ? `${p.key}: shape [${p.expected}] expected, [${p.found}] found` : `${p.key}: ${p.kind}`,
    );
    super('E_STATE_DICT', `state dict does not match the model (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n    ${lines.join('\n    ')}`, {
      where,
      hint: 'pass { strict: false } to load the matching keys only',
    });
    this.problems = problems;
  }
}

/**
 * Base class of every layer and model, in PyTorch's shape: a module owns named parameters
 * (trainable), buffers (state that is saved but not trained, such as batch-norm running statistics)
 * and child modules, and has a training/eval mode. State dict keys are dotted paths
 * (`features.0.weight`, `layer1.0.bn1.running_mean`).
 */
export abstract class Module {
  /** Dotted path from the root module, set when the module is attached; used in error messages. */
  path = '';
  /** True in training mode (dropout active, batch norm updating its running statistics); see `train()`/`eval()`. */
  training = true;
  private readonly _params = new Map<string, Parameter>();
  private readonly _buffers = new Map<string, tf.Variable>();
  private readonly _children = new Map<string, Module>();

  /** The module's computation: `x` in NHWC (or [N, features]) → output. Runs under the caller's tidy scope. */
  abstract forward(x: Tensor, ...rest: unknown[]): Tensor;

  /** Class name shown in summaries and errors. */
  get typeName(): string {
    return this.constructor.name;
  }

  /** Where this module is, for error messages: `features.3 (Conv2d)`. */
  describe(): string {
    return `${this.path || '<root>'} (${this.typeName})`;
  }

  /** Adds a trainable parameter under `name` (its state-dict key below this module). */
  protected registerParameter(name: string, value: tf.Tensor | Parameter, options: ConstructorParameters<typeof Parameter>[1] = {}): Parameter {
    this.assertFreeName(name);
    const p = value instanceof Parameter ? value : new Parameter(value, options);
    if (!(value instanceof Parameter)) value.dispose();
    this._params.set(name, p);
    return p;
  }

  /** Adds a non-trainable tensor that belongs in the state dict (batch-norm running statistics). */
  protected registerBuffer(name: string, value: tf.Tensor): tf.Variable {
    this.assertFreeName(name);
    const v = tf.variable(value, false);
    value.dispose();
    this._buffers.set(name, v);
    return v;
  }

  /** Adds a child module under `name`; its parameters appear as `name.<param>`. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.assertFreeName(name);
    this._children.set(name, module);
    module.setPath(this.path ? `${this.path}.${name}` : name);
    return module;
  }

  /** Replaces a child (e.g. a classifier head); the old one is disposed unless `dispose: false`. */
  replaceModule(name: string, module: Module, options: { dispose?: boolean } = {}): Module {
    const old = this._children.get(name);
    if (!old) throw new KilnError('E_NO_SUCH_MODULE', `${this.describe()} has no child '${name}'`, { expected: [...this._children.keys()].join(', ') });
    if (options.dispose ?? true) old.dispose();
    this._children.set(name, module);
    module.setPath(this.path ? `${this.path}.${name}` : name);
    module.train(this.training);
    return old;
  }

  private assertFreeName(name: string): void {
    if (!name || name.includes('.')) throw new KilnError('E_NAME', `invalid member name '${name}' in ${this.describe()}`, { expected: 'a non-empty name without dots' });
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name)) {
      throw new KilnError('E_NAME', `'${name}' is already registered in ${this.describe()}`);
    }
  }

  /** Sets this module's dotted path and its children's, for error messages. */
  protected setPath(path: string): void {
    this.path = path;
    for (const [n, c] of this._children) c.setPath(`${path}.${n}`);
  }

  /** Immediate children in registration order. */
  children(): [string, Module][] {
    return [...this._children];
  }

  /** This module and all descendants with their dotted paths (the root's path is ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** The descendant at a dotted path (`'features.0'`). */
  getModule(path: string): Module {
    if (path === '') return this;
    let m = this as Module;
    for (const part of path.split('.')) {
      const next = m._children.get(part);
      if (!next) {
        throw new KilnError('E_NO_SUCH_MODULE', `no module at '${path}'`, {
          where: m.describe(),
          expected: `one of: ${[...m._children.keys()].join(', ') || '(no children)'}`,
          found: part,
        });
      }
      m = next;
    }
    return m;
  }

  /** Every parameter below this module with its dotted name, in registration order. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this._params) out.push([prefix ? `${prefix}.${n}` : n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Every parameter below this module, frozen ones included. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Variables gradients flow to (frozen parameters excluded). */
  trainableVariables(): tf.Variable[] {
    return this.parameters()
      .filter((p) => p.trainable)
      .map((p) => p.variable);
  }

  /** Every buffer below this module with its dotted name. */
  namedBuffers(prefix = ''): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [n, b] of this._buffers) out.push([prefix ? `${prefix}.${n}` : n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Own parameter by name (not descendants'). */
  param(name: string): Parameter {
    const p = this._params.get(name);
    if (!p) throw new KilnError('E_NO_SUCH_PARAM', `${this.describe()} has no parameter '${name}'`, { expected: [...this._params.keys()].join(', ') });
    return p;
  }

  /** Own buffer by name. */
  buffer(name: string): tf.Variable {
    const b = this._buffers.get(name);
    if (!b) throw new KilnError('E_NO_SUCH_BUFFER', `${this.describe()} has no buffer '${name}'`);
    return b;
  }

  /** Number of parameter values (trainable only, or all). */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    return this.parameters()
      .filter((p) => !options.trainableOnly || p.trainable)
      .reduce((n, p) => n + p.size, 0);
  }

  /** Puts this module and its descendants in training mode (or eval mode with `false`). */
  train(mode = true): this {
    this.training = mode;
    for (const c of this._children.values()) c.train(mode);
    return this;
  }

  /** Puts this module and its descendants in evaluation mode: `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Freezes everything under `path` (default: the whole module), as Lightning's
   * `BaseFinetuning.freeze` does: parameters stop receiving gradients, and batch-norm layers stop
   * updating their running statistics and normalise with them even in training mode — a frozen
   * backbone then computes the same features in training and evaluation, as it did when it was
   * trained. With `trainBn: true` batch-norm layers are left out: their scale and shift keep
   * training and their statistics keep moving with the new data.
   */
  freeze(path = '', options: FreezeOptions = {}): this {
    for (const [, m] of this.getModule(path).namedModules()) m.setFrozen(true, options);
    return this;
  }

  /** Undoes `freeze` under `path`: parameters train again and batch-norm statistics update again. */
  unfreeze(path = ''): this {
    for (const [, m] of this.getModule(path).namedModules()) m.setFrozen(false, {});
    return this;
  }

  /**
   * Freezes or unfreezes this module's own parameters (not its children's). Layers with state
   * that training updates besides their parameters (batch norm) override it.
   */
  protected setFrozen(frozen: boolean, _options: FreezeOptions): void {
    for (const p of this._params.values()) p.trainable = !frozen;
  }

  /** Parameters and buffers by dotted name. The tensors are the live variables: clone to keep a copy. */
  stateDict(): Record<string, tf.Tensor> {
    const sd: Record<string, tf.Tensor> = {};
    for (const [n, p] of this.namedParameters()) sd[n] = p.variable;
    for (const [n, b] of this.namedBuffers()) sd[n] = b;
    return sd;
  }

  /**
   * Copies values into this module's parameters and buffers. With `strict` (the default) every key
   * must match by name and shape; every problem is listed in one `StateDictMismatchError`.
   */
  loadStateDict(sd: Record<string, tf.Tensor>, options: { strict?: boolean } = {}): StateDictProblem[] {
    const strict = options.strict ?? true;
    const own = new Map<string, tf.Variable>([
      ...this.namedParameters().map(([n, p]) => [n, p.variable] as [string, tf.Variable]),
      ...this.namedBuffers(),
    ]);
    const problems: StateDictProblem[] = [];
    for (const [k, v] of own) {
      const t = sd[k];
      if (!t) problems.push({ key: k, kind: 'missing' });
      else if (!tf.util.arraysEqual(t.shape, v.shape)) problems.push({ key: k, kind: 'shape', expected: v.shape, found: t.shape });
    }
    for (const k of Object.keys(sd)) if (!own.has(k)) problems.push({ key: k, kind: 'unexpected' });
    if (strict && problems.length) throw new StateDictMismatchError(problems, `${this.typeName}.loadStateDict`);
    for (const [k, v] of own) {
      const t = sd[k];
      if (t && tf.util.arraysEqual(t.shape, v.shape)) v.assign(t.dtype === v.dtype ? t : tf.cast(t, v.dtype));
    }
    return problems;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this._params.values()) p.dispose();
    for (const b of this._buffers.values()) b.dispose();
    for (const c of this._children.values()) c.dispose();
  }

  /** Throws `ShapeMismatchError` naming this module unless `x` has rank `rank` and the given trailing dims. */
  protected expectShape(x: Tensor, rank: number, dims: Record<number, number> = {}, layout = ''): void {
    const bad = x.rank !== rank || Object.entries(dims).some(([i, d]) => x.shape[Number(i)] !== d);
    if (bad) {
      const want = Array.from({ length: rank }, (_, i) => (dims[i] !== undefined ? String(dims[i]) : '?'));
      throw new ShapeMismatchError(this.describe(), `[${want.join(', ')}]${layout ? ` (${layout})` : ''}`, x.shape);
    }
  }
}
