import { tf } from '@kiln/core';
import type { Regularizer } from './regularizers.js';

/**
 * A trainable tensor owned by a module. Wraps a tfjs `Variable` (which holds the value and whether
 * gradients flow to it) with what Kiln needs beside it: the regularizer the trainer adds to the loss.
 */
export class Parameter {
  /** The tfjs variable holding the value; optimizers update it in place. */
  readonly variable: tf.Variable;
  /** Penalty on this parameter the trainer adds to the training loss. */
  regularizer?: Regularizer;

  constructor(value: tf.Tensor, options: { trainable?: boolean; regularizer?: Regularizer } = {}) {
    this.variable = tf.variable(value, options.trainable ?? true);
    this.regularizer = options.regularizer;
  }

  /** The variable, under the name PyTorch users reach for (`.data`). */
  get value(): tf.Variable {
    return this.variable;
  }

  /** Its dimensions. */
  get shape(): number[] {
    return this.variable.shape;
  }

  /** Number of values. */
  get size(): number {
    return this.variable.size;
  }

  /** Whether gradients reach it (false while frozen). */
  get trainable(): boolean {
    return this.variable.trainable;
  }

  /** Freezes (false) or unfreezes (true) it. */
  set trainable(on: boolean) {
    this.variable.trainable = on;
  }

  /** Replaces the value in place (shape must match); the variable identity is kept for optimizers. */
  assign(value: tf.Tensor): void {
    this.variable.assign(value);
  }

  /** Frees the variable. */
  dispose(): void {
    this.variable.dispose();
  }
}
