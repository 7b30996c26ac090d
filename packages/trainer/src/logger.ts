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
  /** Called once at the end of a run, also after a failure (`status` = 'failed'). */
  finalize?(status: 'success' | 'failed' | 'interrupted'): void | Promise<void>;
}
