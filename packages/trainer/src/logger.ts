/** Receives metrics from the trainer. Implementations: console, CSV, JSON lines, TensorBoard. */
export interface Logger {
  /** Shown in messages (`csv`, `tensorboard`). */
  readonly name: string;
  /** The module's hyperparameters, once at the start of `fit`. */
  logHyperparams?(params: Record<string, unknown>): void | Promise<void>;
  /** Metrics at a global step; `epoch`-level rows carry an `epoch` field. */
  logMetrics(metrics: Record<string, number>, step: number): void | Promise<void>;
  /** Weight distributions by parameter name, once per epoch (only loggers that implement it get them). */
  logHistograms?(named: Record<string, ArrayLike<number>>, step: number): void | Promise<void>;
  /**
   * A run resumed from a checkpoint taken at `step`: drop everything logged after that step (the
   * interrupted run logged it, the resumed run will log it again), so the logs read as one run.
   * `midEpoch` says the checkpoint was taken inside an epoch, whose row (carrying `epoch`) the
   * interrupted run may already have logged at `step` and the resumed run logs again: drop it too.
   */
  onResume?(step: number, midEpoch: boolean): void | Promise<void>;
  /** Called once at the end of a run, also after a failure (`status` = 'failed'). */
  finalize?(status: 'success' | 'failed' | 'interrupted'): void | Promise<void>;
}
