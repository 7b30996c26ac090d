import { KilnError } from '@kiln/core';
import { memoryRungStore, trialReporter, type PrunerConfig } from './asha.js';

/**
 * One unit of work of a study — a trial, or one fold of a trial — described by plain JSON, so that
 * it can travel to another process or machine.
 */
export interface TrialTask<P = Record<string, unknown>> {
  /** Unique within its study and the same on every submission: `trial-3`, `trial-3.fold-1`. */
  key: string;
  /** Index of the trial within the study, from 0 (shared by the folds of one trial). */
  trial: number;
  /** The fold this task validates on, when the study cross-validates. */
  fold?: number;
  /** The parameters the trial function trains with (for a search: the sampled ones plus `fixed`). */
  params: P;
}

/** What a running trial can tell its executor. */
export interface TrialContext {
  /**
   * Reports the metrics at the end of epoch `epoch` (1-based). Resolves `true` when the executor's
   * pruner decided the trial should stop: the trial then ends at this epoch boundary and returns
   * the metrics it has.
   */
  report(epoch: number, metrics: Record<string, number>): Promise<boolean>;
}

/** Runs one task and returns its final metrics; throws when the trial fails. */
export type TrialFunction<P = Record<string, unknown>> = (task: TrialTask<P>, ctx: TrialContext) => Promise<Record<string, number>>;

/** How a trial ended: ran to its end, stopped early by the pruner, or threw on its last attempt. */
export type TrialStatus = 'completed' | 'pruned' | 'failed';

/** What an executor reports for one task once it has finished. */
export interface TrialOutcome<P = Record<string, unknown>> {
  /** The task that ran. */
  task: TrialTask<P>;
  /** How it ended. */
  status: TrialStatus;
  /** Final metrics (those at the pruning epoch for a pruned trial; empty for a failed one). */
  metrics: Record<string, number>;
  /** The error of the last attempt of a failed trial. */
  error?: string;
  /** How many times the trial was started (retries and take-overs count). */
  attempts: number;
}

/** A snapshot of a running study, as executors report it. */
export interface StudyProgress {
  /** Tasks in the study (trials × folds when cross-validating). */
  total: number;
  /** Tasks that ran to their end. */
  completed: number;
  /** Tasks the pruner stopped early. */
  pruned: number;
  /** Tasks that failed on their last attempt. */
  failed: number;
  /** Tasks running now. */
  running: number;
  /** The best monitored value among finished tasks so far, with its task key. */
  best?: {
    /** The key of the task that reached it (`trial-3`, `trial-3.fold-1`). */
    key: string;
    /** Its value of the monitored metric (finite). */
    value: number;
  };
}

/** How an executor runs a study's tasks and reports on them. */
export interface ExecuteOptions {
  /** Identifies the study: tasks of the same study and key are the same work (queues deduplicate on it). */
  study: string;
  /** Early termination of poor trials (e.g. `asha({...})`). */
  pruner?: PrunerConfig;
  /** Metric and direction of `StudyProgress.best`. */
  monitor?: string;
  /** Whether a lower (`min`, the default) or higher (`max`) value of `monitor` is better. */
  mode?: 'min' | 'max';
  /** Called whenever the counts change. */
  onProgress?: (progress: StudyProgress) => void;
}

/**
 * Runs the tasks of a study. `fn` is the trial function for executors that run tasks themselves;
 * an executor that hands tasks to other processes (a job queue) runs the function its workers were
 * started with instead, which must compute the same thing.
 */
export interface Executor {
  /** What it is called in logs and reports (`in-process`, `queue kiln-trials`). */
  readonly name: string;
  /** Runs the tasks (retrying failed attempts as the executor allows) and resolves one outcome per task, in the order of `tasks`; a failed task is an outcome, not a rejection. */
  run<P>(tasks: TrialTask<P>[], fn: TrialFunction<P>, options: ExecuteOptions): Promise<TrialOutcome<P>[]>;
}

/** A trial whose result a caller needed failed (after the executor's attempts). */
export class TrialFailedError extends KilnError {
  constructor(key: string, error: string | undefined, attempts: number) {
    super('E_TRIAL', `trial ${key} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${error ?? 'unknown error'}`);
  }
}

/** Error text of anything thrown, as a study reports it. */
export function errorText(e: unknown): string {
  return e instanceof KilnError || e instanceof Error ? e.message : String(e);
}

/** Keeps the counts of `StudyProgress` for executors. */
export class ProgressTracker {
  private readonly counts = { completed: 0, pruned: 0, failed: 0 };
  private best?: { key: string; value: number };
  /** Keys of the tasks running now. */
  readonly running = new Set<string>();

  constructor(
    private readonly total: number,
    private readonly options: Pick<ExecuteOptions, 'monitor' | 'mode' | 'onProgress'>,
  ) {}

  /** Counts task `key` as running and reports the progress. */
  started(key: string): void {
    this.running.add(key);
    this.emit();
  }

  /** Counts a finished task by its status, updates the best monitored value and reports the progress. */
  finished(outcome: TrialOutcome<unknown>): void {
    this.running.delete(outcome.task.key);
    this.counts[outcome.status]++;
    const v = this.options.monitor === undefined ? undefined : outcome.metrics[this.options.monitor];
    if (outcome.status !== 'failed' && v !== undefined && Number.isFinite(v)) {
      const better = this.best === undefined || (this.options.mode === 'max' ? v > this.best.value : v < this.best.value);
      if (better) this.best = { key: outcome.task.key, value: v };
    }
    this.emit();
  }

  /** The counts now, as `onProgress` receives them. */
  snapshot(): StudyProgress {
    return { total: this.total, ...this.counts, running: this.running.size, best: this.best };
  }

  private emit(): void {
    this.options.onProgress?.(this.snapshot());
  }
}

/**
 * The default executor: runs the tasks one after another in this process. A task that throws is
 * reported as failed and the study goes on.
 */
export function inProcessExecutor(): Executor {
  return {
    name: 'in-process',
    async run<P>(tasks: TrialTask<P>[], fn: TrialFunction<P>, options: ExecuteOptions): Promise<TrialOutcome<P>[]> {
      const progress = new ProgressTracker(tasks.length, options);
      const store = memoryRungStore();
      const outcomes: TrialOutcome<P>[] = [];
      for (const task of tasks) {
        progress.started(task.key);
        const reporter = trialReporter(options.pruner, store, task.key);
        let outcome: TrialOutcome<P>;
        try {
          const metrics = await fn(task, { report: reporter.report });
          outcome = { task, status: reporter.pruned ? 'pruned' : 'completed', metrics, attempts: 1 };
        } catch (e) {
          outcome = { task, status: 'failed', metrics: {}, error: errorText(e), attempts: 1 };
        }
        outcomes.push(outcome);
        progress.finished(outcome);
      }
      return outcomes;
    },
  };
}

/** A short stable identifier of any JSON value (two FNV-1a 32-bit hashes): the default study id. */
export function studyId(value: unknown): string {
  const text = JSON.stringify(value);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}
