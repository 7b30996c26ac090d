import { tf, KilnError } from '@kiln/core';
import { Module, type Tensor } from './module.js';

/** Runs children in order; children are named `0`, `1`, … as in PyTorch. */
export class Sequential extends Module {
  private readonly items: Module[] = [];

  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: Module): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

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
    return tf.tidy(() => this.items.reduce((h, m) => m.forward(h), x));
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
