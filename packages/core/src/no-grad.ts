import * as tf from './tfjs-core.js';

/** The part of tfjs-core 4.22's engine state that decides whether kernels are recorded. */
interface TapeState {
  gradientDepth: number;
  activeTape: unknown[] | null;
}

/**
 * Runs `fn` with gradient recording off, as PyTorch's `torch.no_grad()`: the kernels it runs are
 * not put on the tape of an enclosing `tf.grad`/`tf.variableGrads`/`optimizer.minimize`, so tfjs
 * neither keeps copies of the tensors their gradients would need nor walks them backward. What
 * `fn` returns is a constant for the enclosing gradient (no gradient flows into it).
 *
 * Why: a metric computed in a training step (accuracy from the logits) needs no gradient, yet
 * inside the gradient's function tfjs records each of its kernels and clones the tensors they
 * save, work and memory that the step pays for nothing.
 *
 * A gradient taken inside `fn` works and gets its own tape; the enclosing tape is restored
 * afterwards, also when `fn` throws. Outside any gradient `noGrad(fn)` is just `fn()`.
 */
export function noGrad<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as { state: TapeState }).state;
  if (state.gradientDepth === 0) return fn();
  const { gradientDepth, activeTape } = state;
  state.gradientDepth = 0;
  state.activeTape = null;
  try {
    return fn();
  } finally {
    state.gradientDepth = gradientDepth;
    state.activeTape = activeTape;
  }
}
