import { tf, ConfigError, KilnError, ShapeMismatchError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import { ReLU } from './activations.js';

let fusionSuspended = 0;

/**
 * Runs `fn` with ReLU fusion switched off, so every layer's own `forward` is called (model
 * summaries and forward hooks that must see each layer's output rely on this). Nests; the
 * previous setting is restored when `fn` returns or throws.
 */
export function withoutFusion<T>(fn: () => T): T {
  fusionSuspended++;
  try {
    return fn();
  } finally {
    fusionSuspended--;
  }
}

/** Runs children in order; children are named `0`, `1`, … as in PyTorch. */
export class Sequential extends Module {
  private readonly items: Module[] = [];

  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.push(m);
  }

  /** Appends a module; it is named by its position (`'3'`). */
  push(m: Module): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  /** Number of modules. */
  get length(): number {
    return this.items.length;
  }

  /** The module at position `i` (negative counts from the end). */
  at(i: number): Module {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new KilnError('E_INDEX', `${this.describe()} has no item ${i}`, { expected: `0..${this.items.length - 1}` });
    return m;
  }

  /** Replaces item i (e.g. a classifier's last layer). */
  set(i: number, m: Module): void {
    const idx = i < 0 ? this.items.length + i : i;
    this.at(idx);
    this.replaceModule(String(idx), m);
    this.items[idx] = m;
  }

  forward(x: Tensor): Tensor {
    return this.forwardTo(x, this.items.length);
  }

  /**
   * The first `end` modules applied to `x` (a backbone's features without its head), fused as
   * `forward` fuses: a Conv2d/Linear followed by ReLU runs as one kernel (fused-training.ts).
   */
  forwardTo(x: Tensor, end: number): Tensor {
    if (!Number.isInteger(end) || end < 0 || end > this.items.length) throw new ConfigError(`${this.describe()}.forwardTo(end)`, `an integer in 0..${this.items.length}`, end);
    return tf.tidy(() => {
      let h = x;
      for (let i = 0; i < end; i++) {
        const m = this.items[i];
        if (fusionSuspended === 0 && isFusable(m) && i + 1 < end && this.items[i + 1] instanceof ReLU) {
          h = m.forwardFused(h, 'relu');
          i++;
        } else {
          h = m.forward(h);
        }
      }
      return h;
    });
  }
}

/** Options of {@link Residual}. */
export interface ResidualOptions {
  /**
   * Projection applied to the input before it is added (ResNet's `downsample`: a strided 1×1
   * convolution and batch norm when the body changes shape). Default: the identity.
   */
  shortcut?: Module;
  /** Applied to the sum (ResNet's final ReLU). Default: none. */
  activation?: Module;
}

/**
 * A residual connection (He et al., 2016): y = activation(body(x) + shortcut(x)). Children are
 * named `body`, `shortcut` and `activation`. The two summands must have the same shape.
 */
export class Residual extends Module {
  constructor(body: Module, options: ResidualOptions = {}) {
    super();
    this.registerModule('body', body);
    if (options.shortcut) this.registerModule('shortcut', options.shortcut);
    if (options.activation) this.registerModule('activation', options.activation);
  }

  // Looked up on each use, so `replaceModule('body', …)` takes effect.
  /** The residual branch. */
  get body(): Module {
    return this.getModule('body');
  }
  /** The projection on the shortcut, if any. */
  get shortcut(): Module | undefined {
    return this.children().find(([n]) => n === 'shortcut')?.[1];
  }
  /** Applied to the sum, if any. */
  get activation(): Module | undefined {
    return this.children().find(([n]) => n === 'activation')?.[1];
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const main = this.body.forward(x);
      const skip = this.shortcut ? this.shortcut.forward(x) : x;
      if (!tf.util.arraysEqual(main.shape, skip.shape)) {
        throw new ShapeMismatchError(this.describe(), `the shortcut's shape [${main.shape.join(', ')}] (from body)`, skip.shape, 'give the Residual a shortcut that projects the input');
      }
      const sum = tf.add(main, skip);
      return this.activation ? this.activation.forward(sum) : sum;
    });
  }
}

/**
 * Parallel branches on the same input whose outputs are concatenated along `axis` (default the
 * channel axis, -1), as in an Inception block. Branches given as an object keep their names as
 * child names (`branch1`, `branch3x3`…); given as an array they are named `0`, `1`, ….
 */
export class Concat extends Module {
  constructor(
    branches: Module[] | Record<string, Module>,
    /** Axis the branch outputs are concatenated along. */
    readonly axis = -1,
  ) {
    super();
    const named = Array.isArray(branches) ? branches.map((m, i) => [String(i), m] as const) : Object.entries(branches);
    if (named.length === 0) throw new KilnError('E_CONFIG', 'Concat needs at least one branch', { where: 'Concat.branches', expected: 'one or more modules' });
    for (const [n, m] of named) this.registerModule(n, m);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const branches = this.children();
      const outs = branches.map(([, b]) => b.forward(x));
      const rank = outs[0].rank;
      const axis = this.axis < 0 ? rank + this.axis : this.axis;
      const ref = outs[0].shape.filter((_, i) => i !== axis);
      outs.forEach((o, i) => {
        const rest = o.shape.filter((_, d) => d !== axis);
        if (o.rank !== rank || !tf.util.arraysEqual(rest, ref)) {
          throw new ShapeMismatchError(
            `${this.describe()} branch ${branches[i][0]}`,
            `[${outs[0].shape.map((d, j) => (j === axis ? '?' : d)).join(', ')}] (all dims but axis ${axis} equal to branch ${branches[0][0]})`,
            o.shape,
          );
        }
      });
      return tf.concat(outs, axis);
    });
  }
}

/** [N, ...] → [N, prod(...)], keeping NHWC order. */
export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return tf.reshape(x, [x.shape[0], -1]);
  }
}

/** Wraps a function as a module (no parameters). */
export class Lambda extends Module {
  constructor(private readonly fn: (x: Tensor) => Tensor, private readonly label = 'Lambda') {
    super();
  }
  override get typeName(): string {
    return this.label;
  }
  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

/** Layers that can apply a following ReLU inside their own kernel. */
interface Fusable extends Module {
  forwardFused(x: Tensor, activation: 'linear' | 'relu'): Tensor;
}

function isFusable(m: Module): m is Fusable {
  return typeof (m as unknown as Partial<Fusable>).forwardFused === 'function';
}
