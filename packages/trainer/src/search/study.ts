import { ConfigError } from '@kiln/core';
import { inProcessExecutor, studyId, type Executor, type StudyProgress, type TrialContext, type TrialStatus, type TrialTask } from './executor.js';
import type { PrunerConfig } from './asha.js';
import { formatTable, meanStd } from './summary-table.js';

/** What the search functions share: how trials run and how they are ranked. */
export interface StudyOptions<P> {
  /**
   * Trains with the given parameters (the sampled ones plus `fixed`) and returns its metrics. With
   * `folds`, it is called once per fold with `ctx.fold` set. Report per-epoch metrics through
   * `ctx.report` for a pruner to act on.
   */
  objective: (params: P, trial: number, ctx: TrialContext & { fold?: number }) => Promise<Record<string, number>>;
  /** Metric ranking the trials (default `val_loss`). */
  monitor?: string;
  /** Default: `max` for names containing `acc`, else `min`. */
  mode?: 'min' | 'max';
  /** How trials run: `inProcessExecutor()` (default, one after another) or a queue's executor. */
  executor?: Executor;
  /** Stops poor trials early, e.g. `asha()`. */
  pruner?: PrunerConfig;
  /** Cross-validate every trial on this many folds; a trial's metrics are the mean over its folds. */
  folds?: number;
  /** Parameters every trial gets besides the searched ones (not shown as table columns). */
  fixed?: Record<string, unknown>;
  /** Study identity for executors that deduplicate work (default: a hash of the trials' tasks). */
  study?: string;
  /** Called with the study's task counts whenever they change (a task starts or finishes). */
  onProgress?: (progress: StudyProgress) => void;
}

/** One trial of a search and how it went. */
export interface Trial<P> {
  /** Index of the trial, from 0, in the order its parameters were drawn or enumerated. */
  trial: number;
  /** The searched parameters (without `fixed`). */
  params: P;
  /** `failed` when any fold failed, else `pruned` when any was pruned, else `completed`. */
  status: TrialStatus;
  /** Final metrics; the mean over folds when cross-validating. */
  metrics: Record<string, number>;
  /** Per-fold metrics when cross-validating. */
  folds?: Record<string, number>[];
  /** The error of a failed trial (of its first failed fold). */
  error?: string;
  /** Times the trial's tasks were started, summed over its folds (retries and take-overs count). */
  attempts: number;
}

/** A finished search as JSON, from {@link SearchResult.summary}. */
export interface StudySummary<P> {
  /** The study's identity (`StudyOptions.study` or the hash of its tasks). */
  study: string;
  /** Trials that completed. */
  completed: number;
  /** Trials the pruner stopped early. */
  pruned: number;
  /** Trials that failed. */
  failed: number;
  /** The metric the trials were ranked by. */
  monitor: string;
  /** Whether a lower (`min`) or higher (`max`) `monitor` ranked better. */
  mode: 'min' | 'max';
  /** Every trial, in trial order. */
  trials: Trial<P>[];
  /** The best completed trial (a pruned one when none completed); `null` when every trial failed. */
  best: Trial<P> | null;
}

/** What a search (`randomSearch`, `gridSearch`) returns. */
export interface SearchResult<P> {
  /** The study's identity (`StudyOptions.study` or the hash of its tasks); submit again under it to reuse finished work. */
  study: string;
  /** In trial order. */
  trials: Trial<P>[];
  /** The best completed trial (a pruned one when none completed); undefined when every trial failed. */
  best: Trial<P> | undefined;
  /** Trials ranked best first (completed, then pruned, then failed), one row each. */
  table(): string;
  /** Everything as JSON: counts, each trial's parameters and metrics, the best. */
  summary(): StudySummary<P>;
}

const STATUS_ORDER: Record<TrialStatus, number> = { completed: 0, pruned: 1, failed: 2 };

/**
 * Runs one trial per entry of `paramsList` (times `folds`) on the executor and ranks the results.
 * `columns` are the searched parameter names shown in the table. Random and grid search differ only
 * in how they make `paramsList`.
 */
export async function runStudy<P extends Record<string, unknown>>(paramsList: P[], columns: string[], options: StudyOptions<P>): Promise<SearchResult<P>> {
  const monitor = options.monitor ?? 'val_loss';
  const mode = options.mode ?? (/acc/.test(monitor) ? 'max' : 'min');
  const folds = options.folds ?? 1;
  if (!(Number.isInteger(folds) && folds >= 1)) throw new ConfigError('folds', 'an integer >= 1 (2 or more to cross-validate)', folds);
  const cv = options.folds !== undefined && folds > 1;
  const tasks: TrialTask<P>[] = [];
  paramsList.forEach((p, trial) => {
    const params = { ...options.fixed, ...p } as P;
    if (!cv) tasks.push({ key: `trial-${trial}`, trial, params });
    else for (let fold = 0; fold < folds; fold++) tasks.push({ key: `trial-${trial}.fold-${fold}`, trial, fold, params });
  });
  const study = options.study ?? studyId(tasks);
  const executor = options.executor ?? inProcessExecutor();
  const outcomes = await executor.run(tasks, (task, ctx) => options.objective(task.params, task.trial, { report: ctx.report, fold: task.fold }), {
    study,
    pruner: options.pruner,
    monitor,
    mode,
    onProgress: options.onProgress,
  });

  const trials: Trial<P>[] = paramsList.map((params, trial) => {
    const mine = outcomes.filter((o) => o.task.trial === trial).sort((a, b) => (a.task.fold ?? 0) - (b.task.fold ?? 0));
    const failed = mine.find((o) => o.status === 'failed');
    const status: TrialStatus = failed ? 'failed' : mine.some((o) => o.status === 'pruned') ? 'pruned' : 'completed';
    const attempts = mine.reduce((a, o) => a + o.attempts, 0);
    if (failed) return { trial, params, status, metrics: {}, error: failed.error, attempts };
    const metrics = cv ? meanStd(mine.map((o) => o.metrics)).mean : mine[0].metrics;
    return { trial, params, status, metrics, ...(cv ? { folds: mine.map((o) => o.metrics) } : {}), attempts };
  });

  const score = (x: Trial<P>) => {
    if (x.status === 'failed') return Infinity;
    const v = x.metrics[monitor];
    if (v === undefined) throw new ConfigError('monitor', `a metric the trials return (${Object.keys(x.metrics).join(', ')})`, monitor);
    return Number.isFinite(v) ? (mode === 'min' ? v : -v) : Infinity;
  };
  // Scored once up front, so a missing monitored metric is reported even for a single trial.
  const scores = new Map(trials.map((t) => [t, score(t)]));
  const ranked = [...trials].sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || (scores.get(a) as number) - (scores.get(b) as number) || a.trial - b.trial);
  const best = ranked[0]?.status === 'failed' ? undefined : ranked[0];
  const metricKeys = [...new Set(trials.flatMap((x) => Object.keys(x.metrics)))].filter((k) => k !== 'epoch');
  const count = (s: TrialStatus) => trials.filter((t) => t.status === s).length;
  return {
    study,
    trials,
    best,
    table: () =>
      formatTable(
        ['rank', 'trial', 'status', ...columns, ...metricKeys],
        ranked.map((x, i) => [i + 1, x.trial, x.status, ...columns.map((k) => cell(x.params[k])), ...metricKeys.map((k) => x.metrics[k] ?? '')]),
      ),
    summary: () => ({ study, completed: count('completed'), pruned: count('pruned'), failed: count('failed'), monitor, mode, trials, best: best ?? null }),
  };
}

function cell(v: unknown): string | number {
  return typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v);
}
