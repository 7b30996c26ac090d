import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '@kiln/core';
import { train } from '../src/commands/train.js';
import { parseStudy } from '../src/study/study-file.js';
import { trainTrial, trialArgv, type TrainLauncher } from '../src/study/trial.js';

describe('study files', () => {
  it('reads train flags, trials, folds and a search block of lists and distributions', () => {
    const s = parseStudy(
      `model: lenet5
epochs: 3          # per trial
limit-train: 512
trials: 8
folds: 3
prune: asha
search:
  lr: loguniform(1e-4, 1e-2)
  momentum: uniform(0.5, 0.9)
  batch-size: [32, 64]
  optimizer: choice(sgd, rmsprop)
`,
      'study.yaml',
    );
    expect(s.flags).toEqual({ model: 'lenet5', epochs: '3', 'limit-train': '512' });
    expect(s).toMatchObject({ sampler: 'random', trials: 8, folds: 3, monitor: 'val_loss', mode: 'min', attempts: 3 });
    expect(s.pruner).toEqual({ kind: 'asha', metric: 'val_loss', mode: 'min', gracePeriod: 1, reductionFactor: 3, maxEpochs: 3 });
    expect(s.search['batch-size']).toEqual({ kind: 'values', values: [32, 64] });
    const r = new Rng(0);
    const lr = s.search.lr.kind === 'distribution' ? s.search.lr.distribution : undefined;
    const xs = Array.from({ length: 200 }, () => lr!.sample(r) as number);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1e-4);
    expect(Math.max(...xs)).toBeLessThanOrEqual(1e-2);
    expect(s.search.optimizer.kind === 'distribution' && s.search.optimizer.distribution.describe).toBe('choice(sgd, rmsprop)');
  });

  it('is a grid search when every searched flag lists values and no trial count is given', () => {
    const s = parseStudy('{"model": "lenet5", "search": {"lr": [0.1, 0.01], "seed": [0, 1]}, "monitor": "val_acc"}', 'study.json');
    expect(s).toMatchObject({ sampler: 'grid', trials: undefined, mode: 'max' });
  });

  it('names the key and what it expects on bad input', () => {
    expect(() => parseStudy('model: lenet5\nepoch: 2\ntrials: 2', 's.yaml')).toThrow(/s\.yaml: epoch[\s\S]*one of: .*epochs/);
    expect(() => parseStudy('model: lenet5\nout: x\ntrials: 2', 's.yaml')).toThrow(/kiln search --out/);
    expect(() => parseStudy('model: lenet5\ntrials: 2\nsearch:\n  lr: normal(0, 1)', 's.yaml')).toThrow(/search\.lr[\s\S]*loguniform/);
    expect(() => parseStudy('model: lenet5\ntrials: 2\nsearch:\n  lr: uniform(1, x)', 's.yaml')).toThrow(/uniform\(low, high\)/);
    expect(() => parseStudy('model: lenet5\nsearch:\n  lr: uniform(0.1, 1)', 's.yaml')).toThrow(/trials: N/);
    expect(() => parseStudy('model: lenet5\nsampler: grid\nsearch:\n  lr: uniform(0.1, 1)', 's.yaml')).toThrow(/lists of values/);
    expect(() => parseStudy('model: lenet5\nlr: 0.1\ntrials: 2\nsearch:\n  lr: [0.1]', 's.yaml')).toThrow(/fixed or searched/);
    expect(() => parseStudy('epochs: 1\ntrials: 1', 's.yaml')).toThrow(/s\.yaml: model/);
    expect(() => parseStudy('model: lenet5\ntrials: 0', 's.yaml')).toThrow(/trials[\s\S]*integer >= 1/);
  });

  it('a trial is kiln train with the flags, its own directory and its fold', () => {
    const argv = trialArgv({ key: 'trial-2.fold-1', trial: 2, fold: 1, params: { model: 'lenet5', lr: -1, out: '/s', folds: 3 } }, 3);
    expect(argv).toEqual(['--model=lenet5', '--lr=-1', '--out', '/s/trial-2/fold-1', '--folds', '3', '--fold', '1']);
  });
});

describe('a study trial as kiln train', () => {
  it('resumes from its own last checkpoint, reuses a finished trial (replaying its reports) and refuses another study\'s directory', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'kiln-trial-'));
    const calls: string[][] = [];
    const launch: TrainLauncher = async (argv, report) => {
      calls.push(argv);
      await report(1, { val_loss: 0.5 });
      return { val_loss: 0.4 };
    };
    const fn = trainTrial(launch);
    const reports: number[] = [];
    const ctx = { report: async (epoch: number) => (reports.push(epoch), false) };
    const task = { key: 'trial-0', trial: 0, params: { model: 'lenet5', out } };
    // A checkpoint left by a worker that died: the trial resumes from it.
    mkdirSync(path.join(out, 'trial-0', 'checkpoints'), { recursive: true });
    writeFileSync(path.join(out, 'trial-0', 'checkpoints', 'last.ckpt'), '');
    expect(await fn(task, ctx)).toEqual({ val_loss: 0.4 });
    expect(calls[0]).toEqual(['--model=lenet5', '--out', path.join(out, 'trial-0'), '--resume', path.join(out, 'trial-0', 'checkpoints', 'last.ckpt')]);
    // Finished: no second training, the same metrics, the epoch reports replayed (a pruner decides again).
    expect(await fn(task, ctx)).toEqual({ val_loss: 0.4 });
    expect(calls).toHaveLength(1);
    expect(reports).toEqual([1, 1]);
    await expect(fn({ ...task, params: { ...task.params, model: 'alexnet' } }, ctx)).rejects.toThrow(/holds another study/);
  });

  it('kiln train checks --folds and --fold before loading anything', async () => {
    const quiet = () => undefined;
    await expect(train(['--model', 'lenet5', '--folds', '3'], quiet, quiet)).rejects.toThrow(/--folds\/--fold[\s\S]*both flags together/);
    await expect(train(['--model', 'lenet5', '--folds', '3', '--fold', '3'], quiet, quiet)).rejects.toThrow(/--fold[\s\S]*0 … 2/);
    await expect(train(['--model', 'lenet5', '--folds', '1', '--fold', '0'], quiet, quiet)).rejects.toThrow(/--folds[\s\S]*integer >= 2/);
  });
});
