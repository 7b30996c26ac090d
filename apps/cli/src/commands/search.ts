import { parseArgs } from 'node:util';
import path from 'node:path';
import { ConfigError } from '@kiln/core';
import { choice, gridSearch, inProcessExecutor, randomSearch, studyId, type Executor, type SearchResult, type StudyProgress } from '@kiln/trainer';
import { UsageError } from '../errors.js';
import { intArg } from '../args.js';
import { readStudyFile, type Study } from '../study/study-file.js';
import { trainInProcess, trainTrial } from '../study/trial.js';
import type { Command } from '../command.js';

export const SEARCH_USAGE = `usage: kiln search --config study.yaml [--queue redis://HOST:PORT] [--out DIR]

Runs a study: a random or grid search over kiln train's flags, optionally cross-validating each
trial, in this process or on a queue served by 'kiln worker' processes on any number of machines.

options:
  --config FILE         the study (JSON or YAML): kiln train flags as keys (model, dataset, epochs,
                        limit-train, …), trials: N, folds: K (optional), and search: mapping flags to
                        a list of values or uniform(a, b), loguniform(a, b), intuniform(a, b), choice(…);
                        optional: sampler (random|grid), search-seed, monitor, mode, prune: asha,
                        grace-period, reduction-factor, attempts
  --queue URL           submit the trials to BullMQ on Redis (redis://HOST:PORT) instead of running them here
  --queue-name NAME     BullMQ queue (default kiln-trials; workers must use the same)
  --poll-ms MS          how often the queue's jobs are looked at (default 500)
  --out DIR             study directory, shared with the workers (default runs/study-<id>); trial N
                        writes DIR/trial-N (DIR/trial-N/fold-K when cross-validating)

Prints progress on stderr, the result table on stdout and, as its last line, a JSON summary.
Submitting the same study again reuses finished trials.
`;

const OPTIONS = { config: { type: 'string' }, queue: { type: 'string' }, 'queue-name': { type: 'string' }, out: { type: 'string' }, 'poll-ms': { type: 'string' } } as const;

function progressLine(p: StudyProgress, monitor: string): string {
  const best = p.best ? `, best ${monitor} ${p.best.value.toFixed(4)} (${p.best.key})` : '';
  return `trials: ${p.completed + p.pruned + p.failed}/${p.total} done (${p.completed} completed, ${p.pruned} pruned, ${p.failed} failed), ${p.running} running${best}`;
}

/** Runs a study file on an executor (in-process unless told otherwise). */
export async function runStudyFile(study: Study, options: { out?: string; executor?: Executor; onProgress?: (p: StudyProgress) => void }): Promise<SearchResult<Record<string, unknown>>> {
  const id = studyId({ flags: study.flags, search: Object.fromEntries(Object.entries(study.search).map(([k, e]) => [k, e.kind === 'values' ? e.values : e.distribution.describe])), sampler: study.sampler, trials: study.trials, folds: study.folds, seed: study.searchSeed });
  // Absolute, so workers on other machines find the directory where the submitter does (same mount path).
  const out = path.resolve(options.out ?? path.join('runs', `study-${id}`));
  const trial = trainTrial(trainInProcess);
  const common = {
    fixed: { ...study.flags, out, ...(study.folds ? { folds: study.folds } : {}) },
    folds: study.folds,
    monitor: study.monitor,
    mode: study.mode,
    pruner: study.pruner,
    executor: options.executor ?? inProcessExecutor(),
    onProgress: options.onProgress,
    objective: (params: Record<string, unknown>, n: number, ctx: Parameters<typeof trial>[1] & { fold?: number }) => trial({ key: `trial-${n}${ctx.fold === undefined ? '' : `.fold-${ctx.fold}`}`, trial: n, fold: ctx.fold, params }, ctx),
  };
  if (study.sampler === 'grid') {
    const grid = Object.fromEntries(Object.entries(study.search).map(([k, e]) => [k, e.kind === 'values' ? e.values : []]));
    return gridSearch({ ...common, grid });
  }
  const space = Object.fromEntries(Object.entries(study.search).map(([k, e]) => [k, e.kind === 'values' ? choice(e.values) : e.distribution]));
  return randomSearch({ ...common, space, trials: study.trials as number, seed: study.searchSeed });
}

export const searchCommand: Command = {
  name: 'search',
  summary: 'run a hyper-parameter search or cross-validation study, here or on a queue of workers',
  usage: SEARCH_USAGE,
  async run(argv, out, err) {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
    if (!values.config) throw new UsageError('--config is required', SEARCH_USAGE);
    const study = readStudyFile(values.config);
    const pollMs = intArg('poll-ms', values['poll-ms'], 500);
    if (values['queue-name'] && !values.queue) throw new ConfigError('--queue-name', 'to be used with --queue', values['queue-name']);
    // BullMQ and its Redis client load only for a queued study: other commands start without them.
    const executor = values.queue ? (await import('@kiln/studies')).queueExecutor({ connection: values.queue, queue: values['queue-name'], attempts: study.attempts, pollMs, onConnectionError: err }) : inProcessExecutor();
    err(`study ${values.config}: ${study.sampler} search, ${executor.name}${study.folds ? `, ${study.folds} folds per trial` : ''}${study.pruner ? ', ASHA pruning' : ''}`);
    let last = '';
    const result = await runStudyFile(study, {
      out: values.out,
      executor,
      onProgress: (p) => {
        const line = progressLine(p, study.monitor);
        if (line !== last) err((last = line));
      },
    });
    out(result.table());
    for (const t of result.trials.filter((x) => x.status === 'failed')) out(`trial ${t.trial} failed after ${t.attempts} attempt${t.attempts === 1 ? '' : 's'}: ${t.error?.replace(/\s*\n\s*/g, ' ')}`);
    // The last line on stdout is the machine-readable result.
    out(JSON.stringify(result.summary()));
    return result.trials.every((t) => t.status === 'failed') ? 1 : 0;
  },
};
