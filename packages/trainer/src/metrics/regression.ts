import { tf, ShapeMismatchError } from '@kiln/core';
import { DeviceSum, checkSameConfig, type Metric } from './metric.js';

/** Predictions and targets as [N, D] (a vector [N] is one output), checked to have one shape. */
function asColumns(preds: tf.Tensor, targets: tf.Tensor, where: string): { p: tf.Tensor2D; t: tf.Tensor2D } {
  if (preds.size !== targets.size || preds.rank === 0 || preds.shape[0] !== targets.shape[0]) {
    throw new ShapeMismatchError(where, 'predictions and targets of the same shape [N] or [N, D]', `predictions [${preds.shape.join(', ')}], targets [${targets.shape.join(', ')}]`);
  }
  const n = preds.shape[0]!;
  return { p: tf.cast(preds, 'float32').reshape([n, -1]) as tf.Tensor2D, t: tf.cast(targets, 'float32').reshape([n, -1]) as tf.Tensor2D };
}

/** Saved state of {@link MeanAbsoluteError} and {@link MeanSquaredError}. */
export interface ErrorSumState {
  /** Sum of the pointwise errors over every element seen. */
  sum: number;
  /** Elements seen (N·D summed over the updates). */
  count: number;
}

/** Mean of a pointwise error over every element (the uniform average over outputs). */
abstract class MeanError implements Metric<ErrorSumState> {
  private readonly sum = new DeviceSum([]);
  private count = 0;

  protected constructor(private readonly metricName: string) {}

  protected abstract pointwise(p: tf.Tensor, t: tf.Tensor): tf.Tensor;

  update(preds: tf.Tensor, targets: tf.Tensor): void {
    const s = tf.tidy(() => {
      const { p, t } = asColumns(preds, targets, `${this.metricName}.update`);
      return tf.sum(this.pointwise(p, t));
    });
    this.sum.add(s);
    s.dispose();
    this.count += preds.size;
  }

  /** NaN before any update. */
  compute(): number {
    return this.count === 0 ? NaN : this.sum.read()[0] / this.count;
  }

  reset(): void {
    this.sum.zero();
    this.count = 0;
  }

  merge(other: this): void {
    checkSameConfig(this.metricName, this.metricName, other.metricName);
    this.sum.add(other.sum.tensor);
    this.count += other.count;
  }

  stateDict(): ErrorSumState {
    return { sum: this.sum.read()[0], count: this.count };
  }

  loadStateDict(state: ErrorSumState): void {
    this.sum.load([state.sum], `${this.metricName}.loadStateDict.sum`);
    this.count = state.count;
  }

  dispose(): void {
    this.sum.dispose();
  }
}

/** Mean absolute error, sklearn's `mean_absolute_error` (uniform over outputs). */
export class MeanAbsoluteError extends MeanError {
  constructor() {
    super('MeanAbsoluteError');
  }

  /** Elementwise absolute error |ŷ − y| of predictions and targets [N, D]. */
  protected pointwise(p: tf.Tensor, t: tf.Tensor): tf.Tensor {
    return tf.abs(tf.sub(p, t));
  }
}

/** Mean squared error, sklearn's `mean_squared_error` (uniform over outputs). */
export class MeanSquaredError extends MeanError {
  constructor() {
    super('MeanSquaredError');
  }

  /** Elementwise squared error (ŷ − y)² of predictions and targets [N, D]. */
  protected pointwise(p: tf.Tensor, t: tf.Tensor): tf.Tensor {
    return tf.squaredDifference(p, t);
  }
}

/** Saved state of {@link R2Score}: running statistics with one entry per output D (all empty before any update). */
export interface R2State {
  /** Examples (rows) seen. */
  count: number;
  /** Per output: mean of the targets. */
  mean: number[];
  /** Per output: Σ(y − ȳ)², the targets' squared deviations from their mean. */
  m2: number[];
  /** Per output: Σ(y − ŷ)², the squared prediction errors. */
  residual: number[];
}

/**
 * Coefficient of determination R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)², per output and averaged uniformly
 * (sklearn's `r2_score`). A constant target scores 1 when predicted exactly and 0 otherwise, as
 * sklearn's `force_finite`. The target spread is kept as a running mean and sum of squared
 * deviations, combined with Chan et al.'s pairwise update, so large offsets do not cancel out.
 */
export class R2Score implements Metric<R2State> {
  private count = 0;
  private stats?: { mean: DeviceSum; m2: DeviceSum; residual: DeviceSum };

  private ensure(d: number, where: string): { mean: DeviceSum; m2: DeviceSum; residual: DeviceSum } {
    if (!this.stats) this.stats = { mean: new DeviceSum([d]), m2: new DeviceSum([d]), residual: new DeviceSum([d]) };
    if (this.stats.mean.shape[0] !== d) throw new ShapeMismatchError(where, `${this.stats.mean.shape[0]} outputs per example, as before`, `${d}`);
    return this.stats;
  }

  /** Folds a part (count nb, per-output mean and m2 tensors) into the running statistics. */
  private combine(nb: number, meanB: tf.Tensor, m2B: tf.Tensor, residualB: tf.Tensor): void {
    const s = this.stats!;
    const na = this.count;
    const n = na + nb;
    const delta = tf.sub(meanB, s.mean.tensor);
    s.m2.replace((m2) => tf.add(tf.add(m2, m2B), tf.mul(tf.square(delta), (na * nb) / n)));
    s.mean.replace((mean) => tf.add(mean, tf.mul(delta, nb / n)));
    delta.dispose();
    s.residual.add(residualB);
    this.count = n;
  }

  update(preds: tf.Tensor, targets: tf.Tensor): void {
    const where = 'R2Score.update';
    const [meanB, m2B, residualB] = tf.tidy(() => {
      const { p, t } = asColumns(preds, targets, where);
      const mean = tf.mean(t, 0);
      return [mean, tf.sum(tf.square(tf.sub(t, mean)), 0), tf.sum(tf.squaredDifference(t, p), 0)];
    });
    this.ensure(meanB.shape[0]!, where);
    this.combine(preds.shape[0]!, meanB, m2B, residualB);
    tf.dispose([meanB, m2B, residualB]);
  }

  /** NaN before any update. */
  compute(): number {
    if (!this.stats || this.count === 0) return NaN;
    const m2 = this.stats.m2.read();
    const res = this.stats.residual.read();
    const r2 = m2.map((tot, j) => (tot === 0 ? (res[j] === 0 ? 1 : 0) : 1 - res[j] / tot));
    return r2.reduce((a, b) => a + b, 0) / r2.length;
  }

  reset(): void {
    this.count = 0;
    if (this.stats) for (const s of Object.values(this.stats)) s.dispose();
    this.stats = undefined;
  }

  merge(other: this): void {
    if (!other.stats || other.count === 0) return;
    this.ensure(other.stats.mean.shape[0]!, 'R2Score.merge');
    this.combine(other.count, other.stats.mean.tensor, other.stats.m2.tensor, other.stats.residual.tensor);
  }

  stateDict(): R2State {
    if (!this.stats) return { count: 0, mean: [], m2: [], residual: [] };
    return { count: this.count, mean: this.stats.mean.read(), m2: this.stats.m2.read(), residual: this.stats.residual.read() };
  }

  loadStateDict(state: R2State): void {
    this.reset();
    if (state.count === 0) return;
    const s = this.ensure(state.mean.length, 'R2Score.loadStateDict');
    s.mean.load(state.mean, 'R2Score.loadStateDict.mean');
    s.m2.load(state.m2, 'R2Score.loadStateDict.m2');
    s.residual.load(state.residual, 'R2Score.loadStateDict.residual');
    this.count = state.count;
  }

  dispose(): void {
    this.reset();
  }
}
