import * as tf from './tfjs-core.js';
import { KilnError } from './errors.js';

/** Live tensor count of the engine. */
export function liveTensors(): number {
  return tf.memory().numTensors;
}

/** A tensor count grew where it must not. */
export class TensorLeakError extends KilnError {
  constructor(where: string, before: number, after: number) {
    super('E_TENSOR_LEAK', `${after - before} tensor(s) leaked in ${where}`, {
      where,
      expected: `${before} live tensors`,
      found: `${after}`,
      hint: 'wrap the work in tf.tidy() or dispose() intermediate tensors',
    });
  }
}

/**
 * Watches the engine's tensor count across repeated work (steps, epochs). The first `warmup` marks
 * are ignored: optimizers create their slot variables lazily on the first step.
 */
export class LeakDetector {
  private baseline: number | null = null;
  private seen = 0;
  constructor(private readonly warmup = 1, private readonly tolerance = 0) {}

  /** Forgets the counts seen so far, to start measuring afresh. */
  reset(): void {
    this.baseline = null;
    this.seen = 0;
  }

  /** Records the count now; throws `TensorLeakError` when it exceeds the baseline by more than the tolerance. */
  check(where: string): void {
    const n = liveTensors();
    this.seen++;
    if (this.seen <= this.warmup || this.baseline === null) {
      this.baseline = n;
      return;
    }
    if (n > this.baseline + this.tolerance) throw new TensorLeakError(where, this.baseline, n);
  }
}

/** Runs `fn` and asserts it leaves no new tensors behind (async aware, unlike tf.tidy). */
export async function expectNoLeak<T>(where: string, fn: () => Promise<T> | T): Promise<T> {
  const before = liveTensors();
  const out = await fn();
  const after = liveTensors();
  if (after > before) throw new TensorLeakError(where, before, after);
  return out;
}
