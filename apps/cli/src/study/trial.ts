import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '@kiln/core';
import type { Callback, TrialFunction, TrialTask } from '@kiln/trainer';
import { train, writeJson, type TrainSummary } from '../commands/train.js';

/** Metrics a trial reports, per epoch and at its end (the rest of `kiln train`'s are run details). */
const TRIAL_METRICS = ['train_loss', 'train_acc', 'val_loss', 'val_acc'];

/** Runs `kiln train` with `argv`, sending each epoch's metrics to `report`; resolves with the final metrics. */
export type TrainLauncher = (argv: string[], report: (epoch: number, metrics: Record<string, number>) => Promise<boolean>) => Promise<Record<string, number>>;

/** What `trial.json` in a finished trial's directory holds. */
interface TrialRecord {
  argv: string[];
  metrics: Record<string, number>;
  reports: { epoch: number; metrics: Record<string, number> }[];
}

function pick(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(TRIAL_METRICS.filter((k) => m[k] !== undefined).map((k) => [k, m[k]]));
}

/** The directory of a task: `OUT/trial-N` or `OUT/trial-N/fold-K`. */
export function trialDir(task: TrialTask): string {
  const out = task.params.out;
  if (typeof out !== 'string') throw new ConfigError('study out', 'a directory for the trials', out);
  return path.join(out, `trial-${task.trial}`, ...(task.fold === undefined ? [] : [`fold-${task.fold}`]));
}

/** `kiln train`'s arguments for a task: its flags, its directory and, when cross-validating, its fold. */
export function trialArgv(task: TrialTask, folds: number | undefined): string[] {
  const argv: string[] = [];
  for (const [k, v] of Object.entries(task.params)) {
    if (k === 'out' || k === 'folds' || v === undefined || v === null) continue;
    // --flag=value: a value may start with a dash (--lr=-1 is a bad trial to report, not a parse error).
    argv.push(`--${k}=${String(v)}`);
  }
  argv.push('--out', trialDir(task));
  if (task.fold !== undefined) argv.push('--folds', String(folds), '--fold', String(task.fold));
  return argv;
}

/**
 * A study trial as `kiln train`: reuses a finished trial's `trial.json` (replaying its epoch reports,
 * so a pruner decides as before) instead of training again, and resumes an unfinished one from its
 * own `checkpoints/last.ckpt` — so a trial started again after its worker died loses only the steps
 * since that checkpoint. A directory holding a different trial is an error, never overwritten.
 */
export function trainTrial(launch: TrainLauncher): TrialFunction {
  return async (task, ctx) => {
    const folds = typeof task.params.folds === 'number' ? task.params.folds : undefined;
    const argv = trialArgv(task, folds);
    const dir = trialDir(task);
    mkdirSync(dir, { recursive: true });
    const done = path.join(dir, 'trial.json');
    const started = path.join(dir, 'argv.json');
    if (existsSync(started)) {
      const before = JSON.parse(readFileSync(started, 'utf8')) as string[];
      if (JSON.stringify(before) !== JSON.stringify(argv)) throw new ConfigError(`trial directory ${dir}`, 'the directory of this trial (it holds another study: use a new --out)', before.join(' '));
    } else {
      writeJson(started, argv);
    }
    if (existsSync(done)) {
      const record = JSON.parse(readFileSync(done, 'utf8')) as TrialRecord;
      for (const r of record.reports) if (await ctx.report(r.epoch, r.metrics)) break;
      return record.metrics;
    }
    const reports: TrialRecord['reports'] = [];
    const last = path.join(dir, 'checkpoints', 'last.ckpt');
    const metrics = await launch(existsSync(last) ? [...argv, '--resume', last] : argv, async (epoch, m) => {
      reports.push({ epoch, metrics: m });
      return ctx.report(epoch, m);
    });
    writeJson(done, { argv, metrics, reports } satisfies TrialRecord);
    return metrics;
  };
}

/**
 * The callback a trial adds to `kiln train`: reports each epoch's metrics and stops the run at this
 * epoch boundary when told to; `final()` is the metrics at the end of fit (restored ones too, when a
 * resumed run had no epoch left).
 */
export function reportingCallback(report: (epoch: number, metrics: Record<string, number>) => Promise<boolean>): Callback & { final(): Record<string, number> } {
  let final: Record<string, number> = {};
  return {
    async onTrainEpochEnd(trainer) {
      if (await report(trainer.currentEpoch + 1, pick(trainer.callbackMetrics))) trainer.shouldStop = true;
    },
    onFitEnd(trainer) {
      final = pick(trainer.callbackMetrics);
    },
    final: () => final,
  };
}

/** A trial's result: the final training/validation metrics, and the test metrics when there is a test split. */
export function trialMetrics(final: Record<string, number>, summary: Pick<TrainSummary, 'test_loss' | 'test_accuracy'>): Record<string, number> {
  const m = { ...final };
  if (typeof summary.test_loss === 'number') m.test_loss = summary.test_loss;
  if (typeof summary.test_accuracy === 'number') m.test_acc = summary.test_accuracy;
  return m;
}

/** Runs `kiln train` in this process (the in-process executor's way). */
export const trainInProcess: TrainLauncher = async (argv, report) => {
  const cb = reportingCallback(report);
  const summary = await train(argv, () => undefined, () => undefined, { callbacks: [cb] });
  return trialMetrics(cb.final(), summary);
};
