import { tf, ConfigError } from '@kiln/core';
import type { Optimizer } from './optimizer.js';
import { snapshotTraining } from './training-snapshot.js';

/** Options of `findLr`. */
export interface FindLrOptions {
  /** Loss of the model on batch number `step` (runs under the gradient tape; must return a scalar). */
  loss: (step: number) => tf.Scalar;
  /** Optimizer over the model's variables; its state and the variables are restored afterwards. */
  optimizer: Optimizer;
  /** First rate of the sweep. Default 1e-7. */
  startLr?: number;
  /** Last rate of the sweep. Default 10. */
  endLr?: number;
  /** Steps of the sweep (one batch each). Default 100. */
  numSteps?: number;
  /** Weight β of the exponential moving average smoothing the loss, in [0, 1). Default 0.98. */
  smoothing?: number;
  /** Stop once the smoothed loss exceeds this multiple of the best one seen. Default 4. */
  divergenceThreshold?: number;
  /**
   * Awaited before step `step` (before `loss(step)` runs under the tape): where a caller fetches
   * that step's batch from an asynchronous loader, since `loss` itself cannot wait.
   */
  beforeStep?: (step: number) => Promise<void> | void;
  /**
   * Other variables the sweep's forward passes change, put back afterwards with the weights: a
   * model's buffers, such as batch-norm running statistics (`model.namedBuffers().map(([, b]) => b)`).
   */
  restore?: tf.Variable[];
}

/** What `findLr` returns. */
export interface FindLrResult {
  /** Rate used at each step taken. */
  lrs: number[];
  /** Raw loss at each step. */
  losses: number[];
  /** Bias-corrected moving average of the loss at each step. */
  smoothedLosses: number[];
  /** Rate where the smoothed loss falls fastest against log(lr); NaN when the sweep was too short. */
  suggestion: number;
  /** True when the sweep stopped early because the loss diverged. */
  diverged: boolean;
}

/**
 * Learning-rate range test (Smith, 2017): trains for up to `numSteps` batches with the rate growing
 * exponentially from `startLr` to `endLr`, records the loss, and suggests the rate at the steepest
 * descent of the smoothed loss, which sits below the rate where training blows up. The model's
 * variables, the optimizer (slots, step count, rates) and the `restore` variables (batch-norm
 * statistics) are restored afterwards.
 */
export async function findLr(options: FindLrOptions): Promise<FindLrResult> {
  const { loss, optimizer, startLr = 1e-7, endLr = 10, numSteps = 100, smoothing = 0.98, divergenceThreshold = 4 } = options ?? ({} as FindLrOptions);
  if (typeof loss !== 'function') throw new ConfigError('findLr.loss', 'a function (step) => scalar loss', loss);
  if (!optimizer || !Array.isArray(optimizer.paramGroups)) throw new ConfigError('findLr.optimizer', 'a Kiln optimizer', optimizer);
  if (!(Number.isFinite(startLr) && startLr > 0)) throw new ConfigError('findLr.startLr', 'a finite number > 0', startLr);
  if (!(Number.isFinite(endLr) && endLr > startLr)) throw new ConfigError('findLr.endLr', `a finite number > startLr (${startLr})`, endLr);
  if (!(Number.isInteger(numSteps) && numSteps >= 2)) throw new ConfigError('findLr.numSteps', 'an integer >= 2', numSteps);
  if (!(smoothing >= 0 && smoothing < 1)) throw new ConfigError('findLr.smoothing', 'a number in [0, 1)', smoothing);
  if (!(divergenceThreshold > 1)) throw new ConfigError('findLr.divergenceThreshold', 'a number > 1', divergenceThreshold);

  const vars = optimizer.paramGroups.flatMap((g) => g.params).filter((p) => p.trainable);
  const extra = options.restore ?? [];
  if (!Array.isArray(extra)) throw new ConfigError('findLr.restore', 'an array of variables', extra);
  const snapshot = snapshotTraining(optimizer, extra);

  const lrs: number[] = [];
  const losses: number[] = [];
  const smoothedLosses: number[] = [];
  let avg = 0;
  let best = Infinity;
  let diverged = false;
  try {
    for (let i = 0; i < numSteps; i++) {
      const lr = startLr * Math.pow(endLr / startLr, i / (numSteps - 1));
      await options.beforeStep?.(i);
      optimizer.setLr(lr);
      const { value, grads } = tf.variableGrads(() => loss(i), vars);
      // An asynchronous read: GPU backends (WebGPU in Node) refuse synchronous ones.
      const l = (await value.data())[0];
      value.dispose();
      optimizer.step(grads);
      tf.dispose(grads);
      lrs.push(lr);
      losses.push(l);
      avg = smoothing * avg + (1 - smoothing) * l;
      const smoothed = avg / (1 - Math.pow(smoothing, i + 1));
      smoothedLosses.push(smoothed);
      best = Math.min(best, smoothed);
      if (!Number.isFinite(smoothed) || smoothed > divergenceThreshold * best) {
        diverged = true;
        break;
      }
    }
  } finally {
    snapshot.restore();
  }
  return { lrs, losses, smoothedLosses, suggestion: steepestDescent(lrs, smoothedLosses), diverged };
}

/**
 * The rate where the smoothed loss falls fastest per unit of log(lr), by central differences.
 * The first and last tenth of the points are skipped: the moving average lags at the start, and
 * the end is where the loss blows up.
 */
export function steepestDescent(lrs: number[], smoothed: number[]): number {
  const n = Math.min(lrs.length, smoothed.length);
  const skip = Math.max(1, Math.floor(n / 10));
  let bestI = -1;
  let bestSlope = Infinity;
  for (let i = skip; i < n - skip; i++) {
    const slope = (smoothed[i + 1] - smoothed[i - 1]) / (Math.log(lrs[i + 1]) - Math.log(lrs[i - 1]));
    if (Number.isFinite(slope) && slope < bestSlope) {
      bestSlope = slope;
      bestI = i;
    }
  }
  return bestI < 0 ? NaN : lrs[bestI];
}
