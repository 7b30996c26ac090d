import { tf } from '@kiln/core';
import type { Regularizer } from './regularizers.js';

/**
 * A trainable tensor owned by a module. Wraps a tfjs `Variable` (which holds the value and whether
 * gradients flow to it) with what Kiln needs beside it: the regularizer the trainer adds to the loss.
 */
export class Parameter {
  readonly variable: tf.Variable;
  regularizer?: Regularizer;

  constructor(value: tf.Tensor, options: { trainable?: boolean; regularizer?: Regularizer } = {}) {
    this.variable = tf.variable(value, options.trainable ?? true);
    this.regularizer = options.regularizer;
  }

  get value(): tf.Variable {
    return this.variable;
  }

  get shape(): number[] {
    return this.variable.shape;
  }

  get size(): number {
    return this.variable.size;
  }

  get trainable(): boolean {
    return this.variable.trainable;
  }

  set trainable(on: boolean) {
    this.variable.trainable = on;
  }

  /** Replaces the value in place (shape must match); the variable identity is kept for optimizers. */
  assign(value: tf.Tensor): void {
    this.variable.assign(value);
  }

  dispose(): void {
    this.variable.dispose();
  }
}
