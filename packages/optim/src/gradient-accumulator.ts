import { tf, ConfigError, KilnError } from '@kiln/core';

/** Options of {@link GradientAccumulator}. */
export interface GradientAccumulatorOptions {
  /** Micro-batches summed before each optimizer step. */
  steps: number;
  /**
   * `mean` (default) divides the sum by `steps`, so accumulating k micro-batches of a mean loss
   * gives the gradient of the mean over the k·b samples; `sum` keeps the plain sum.
   */
  reduction?: 'mean' | 'sum';
}

/**
 * Gradient accumulation: sums the gradients of several micro-batches so one optimizer step sees
 * the gradient of a larger batch than fits in memory.
 *
 *   const acc = new GradientAccumulator({ steps: 4 });
 *   for (const batch of batches) {
 *     const { grads } = tf.variableGrads(() => loss(batch));
 *     acc.add(grads); tf.dispose(grads);
 *     if (acc.ready) { const g = acc.take(); optimizer.step(g); tf.dispose(g); }
 *   }
 */
export class GradientAccumulator {
  /** Micro-batches summed before each optimizer step. */
  readonly steps: number;
  /** Whether `take()` returns the mean or the sum. */
  readonly reduction: 'mean' | 'sum';
  private sums = new Map<string, tf.Tensor>();
  /** Micro-batches added since the last `take()`. */
  count = 0;

  constructor(options: GradientAccumulatorOptions) {
    const { steps, reduction = 'mean' } = options ?? ({} as GradientAccumulatorOptions);
    if (!(Number.isInteger(steps) && steps >= 1)) throw new ConfigError('GradientAccumulator.steps', 'an integer >= 1', steps);
    if (reduction !== 'mean' && reduction !== 'sum') throw new ConfigError('GradientAccumulator.reduction', "'mean' or 'sum'", reduction);
    this.steps = steps;
    this.reduction = reduction;
  }

  /** True once `steps` micro-batches have been added. */
  get ready(): boolean {
    return this.count >= this.steps;
  }

  /** Adds one micro-batch's gradients (copied; the caller still owns `grads`). */
  add(grads: tf.NamedTensorMap): void {
    for (const [k, g] of Object.entries(grads)) {
      const prev = this.sums.get(k);
      if (prev && !tf.util.arraysEqual(prev.shape, g.shape)) {
        throw new KilnError('E_SHAPE_MISMATCH', `gradient '${k}' changed shape between micro-batches`, { expected: `[${prev.shape}]`, found: `[${g.shape}]` });
      }
      this.sums.set(k, tf.keep(prev ? tf.add(prev, g) : tf.clone(g)));
      prev?.dispose();
    }
    this.count++;
  }

  /**
   * Returns the accumulated gradients (sum, or mean over the micro-batches added) and starts a new
   * accumulation. The caller disposes the returned tensors.
   */
  take(): tf.NamedTensorMap {
    if (this.count === 0) throw new KilnError('E_NO_GRADIENTS', 'GradientAccumulator.take() called before any add()');
    const out: tf.NamedTensorMap = {};
    const divisor = this.reduction === 'mean' ? this.count : 1;
    for (const [k, s] of this.sums) {
      out[k] = divisor === 1 ? s : tf.tidy(() => tf.keep(tf.div(s, divisor)));
      if (divisor !== 1) s.dispose();
    }
    this.sums.clear();
    this.count = 0;
    return out;
  }

  /** Drops what has been accumulated. */
  reset(): void {
    for (const s of this.sums.values()) s.dispose();
    this.sums.clear();
    this.count = 0;
  }

  /** Accumulator state for checkpoints taken mid-accumulation. */
  stateDict(): {
    /** Micro-batches added. */
    count: number;
    /** Running gradient sums by variable name. */
    sums: Record<string, tf.Tensor>;
  } {
    return { count: this.count, sums: Object.fromEntries(this.sums) };
  }

  /** Takes back what `stateDict` returned (the tensors are copied). */
  loadStateDict(state: { count: number; sums: Record<string, tf.Tensor> }): void {
    this.reset();
    for (const [k, t] of Object.entries(state.sums)) this.sums.set(k, tf.keep(tf.clone(t)));
    this.count = state.count;
  }
}
