import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '@kiln/core/node';
import { Tuner, batchSizeChart, lrFindChart } from '@kiln/trainer';
import { choiceArg, floatArg, intArg, subCommandArg } from '../args.js';
import { UsageError } from '../errors.js';
import { TRAIN_USAGE, prepareRun, trainFlags, writeJson } from './train.js';
import type { Command } from '../command.js';

export const TUNE_USAGE = `usage: kiln tune lr --model lenet5 --dataset fashion-mnist [train options] [lr options]
       kiln tune batch-size --model lenet5 --dataset fashion-mnist [train options] [batch-size options]

Tries a few training steps on the data and model \`kiln train\` would build from the same flags,
puts everything back, writes a plot into --out, and prints the suggestion as the last line on
stdout, in JSON: {"suggested_lr": …} or {"suggested_batch_size": …}.

  lr            learning-rate range test (Smith 2017): the rate grows exponentially, one batch per
                step, until the loss diverges; suggests the rate where the smoothed loss falls
                fastest. Writes OUT/lr-find.png and OUT/lr-find.json.
    --start-lr X          first rate (default 1e-7)
    --end-lr X            last rate (default 10)
    --num-steps N         steps of the sweep (default 100)

  batch-size    doubles the batch from --batch-size until a step fails to allocate, exceeds the
                memory budget, or gets slower per sample; suggests the largest size that fitted at
                close to the best throughput. Writes OUT/batch-size.png and OUT/batch-size.json.
    --mode M              power (default) or binsearch (then searches between the last size that
                          fitted and the first that did not)
    --max-batch-size N    largest size tried (default: the training set's size)
    --memory-budget MIB   backend memory a step may use at its peak, in MiB (default: none)
    --steps N             timed steps per size, after one warm-up step (default 3)

train options (see kiln train --help): --model, --dataset and the data flags, --batch-size, --lr,
--optimizer, --momentum, --augment, --seed, --limit-train, --val-split, --pretrained, --backend,
--out (default runs/<timestamp>), --config.
`;

const TUNE_OPTIONS = {
  'start-lr': { type: 'string' },
  'end-lr': { type: 'string' },
  'num-steps': { type: 'string' },
  mode: { type: 'string' },
  'max-batch-size': { type: 'string' },
  'memory-budget': { type: 'string' },
  steps: { type: 'string' },
} as const;

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'find a learning rate (`kiln tune lr`) or the largest useful batch size (`kiln tune batch-size`)',
  usage: TUNE_USAGE,
  async run(argv, out, err) {
    const [given, ...rest] = argv;
    const what = subCommandArg('tune', given, ['lr', 'batch-size'] as const, TUNE_USAGE);
    const values = trainFlags(rest, TUNE_OPTIONS);
    if (!values.model) throw new UsageError('--model is required', `e.g. --model lenet5\n${TUNE_USAGE}\n${TRAIN_USAGE}`);
    // Read before the data is loaded, so that a bad flag fails fast.
    const lrOptions = { startLr: floatArg('start-lr', values['start-lr'], 1e-7), endLr: floatArg('end-lr', values['end-lr'], 10), numSteps: intArg('num-steps', values['num-steps'], 100, 2) };
    const mode = choiceArg('mode', values.mode, 'power', ['power', 'binsearch'] as const);
    const maxBatchSize = values['max-batch-size'] === undefined ? undefined : intArg('max-batch-size', values['max-batch-size'], 1);
    const budgetMiB = values['memory-budget'] === undefined ? undefined : floatArg('memory-budget', values['memory-budget'], 0);
    const steps = intArg('steps', values.steps, 3);

    const run = await prepareRun(values, err);
    try {
      mkdirSync(run.outDir, { recursive: true });
      const tuner = new Tuner();
      if (what === 'lr') {
        const result = await tuner.lrFind(run.module, run.trainLoader, lrOptions);
        const plot = path.join(run.outDir, 'lr-find.png');
        writeFileAtomic(plot, lrFindChart(result).png());
        writeJson(path.join(run.outDir, 'lr-find.json'), { suggested_lr: finite(result.suggestion), diverged: result.diverged, lrs: result.lrs, losses: result.losses, smoothed_losses: result.smoothedLosses });
        err(`lr range test: ${result.lrs.length} steps from ${result.lrs[0]?.toExponential(1)} to ${result.lrs.at(-1)?.toExponential(1)}${result.diverged ? ' (stopped: the loss diverged)' : ''}; plot: ${plot}`);
        if (!Number.isFinite(result.suggestion)) err('no suggestion: the sweep was too short to find where the loss falls fastest (raise --num-steps or --end-lr)');
        out(JSON.stringify({ suggested_lr: finite(result.suggestion), plot, diverged: result.diverged }));
        return Number.isFinite(result.suggestion) ? 0 : 1;
      }
      const result = await tuner.scaleBatchSize(run.module, run.trainLoader, { mode, maxBatchSize: maxBatchSize ?? run.trainSet.length, memoryBudget: budgetMiB === undefined ? undefined : budgetMiB * 2 ** 20, steps });
      const plot = path.join(run.outDir, 'batch-size.png');
      writeFileAtomic(plot, batchSizeChart(result).png());
      const trials = result.trials.map((t) => ({ batch_size: t.batchSize, fits: t.fits, samples_per_sec: finite(t.samplesPerSec), peak_bytes: finite(t.peakBytes), rss_bytes: finite(t.rssBytes), failure: t.failure ?? null }));
      writeJson(path.join(run.outDir, 'batch-size.json'), { suggested_batch_size: result.suggestion, stopped_because: result.stoppedBecause, trials });
      for (const t of result.trials) err(`batch ${t.batchSize}: ${t.fits ? `${t.samplesPerSec.toFixed(0)} samples/s, peak ${(t.peakBytes / 2 ** 20).toFixed(1)} MiB` : t.failure}`);
      err(`stopped: ${result.stoppedBecause}; plot: ${plot}`);
      out(JSON.stringify({ suggested_batch_size: result.suggestion, plot, stopped_because: result.stoppedBecause }));
      return 0;
    } finally {
      run.model.dispose();
      await run.data.close();
    }
  },
};

/** JSON has no NaN: a missing number is null. */
function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
