import { parseArgs } from 'node:util';
import os from 'node:os';
import { UsageError } from '../errors.js';
import { intArg } from '../args.js';
import { trainTrial } from '../study/trial.js';
import { trainInChild } from '../study/child-launcher.js';
import type { Command } from '../command.js';

export const WORKER_USAGE = `usage: kiln worker --queue redis://HOST:PORT [options]

Runs the trials of studies submitted with 'kiln search --queue', one at a time, each as a kiln train
process, until stopped (Ctrl-C or SIGTERM: the running trial finishes first; a second signal stops
at once and another worker takes the trial over). Start any number, on any machines that see the
study directory at the same path.

options:
  --queue URL           Redis (redis://[user:password@]HOST:PORT[/DB])
  --queue-name NAME     BullMQ queue (default kiln-trials)
  --lock-ms MS          a trial is taken over when its worker has not renewed its lock for this
                        long (default 30000)
  --stalled-ms MS       how often to look for trials of dead workers (default 30000)
  --verbose             also print the trials' own progress
`;

const OPTIONS = { queue: { type: 'string' }, 'queue-name': { type: 'string' }, 'lock-ms': { type: 'string' }, 'stalled-ms': { type: 'string' }, verbose: { type: 'boolean' } } as const;

export const workerCommand: Command = {
  name: 'worker',
  summary: "run trials of studies submitted with 'kiln search --queue', until stopped",
  usage: WORKER_USAGE,
  async run(argv, _out, err) {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
    if (!values.queue) throw new UsageError('--queue is required', WORKER_USAGE);
    const name = `${os.hostname()}:${process.pid}`;
    // Loaded here, so that commands other than this one start without BullMQ and its Redis client.
    const { startTrialWorker } = await import('@kiln/studies');
    const w = startTrialWorker({
      connection: values.queue,
      queue: values['queue-name'],
      name,
      lockDuration: intArg('lock-ms', values['lock-ms'], 30_000),
      stalledInterval: intArg('stalled-ms', values['stalled-ms'], 30_000),
      run: trainTrial(trainInChild({ onStderr: values.verbose ? (t) => process.stderr.write(t) : undefined, onStart: (pid) => err(`trial process ${pid}`) })),
      onEvent: (line) => err(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
    });
    await w.worker.waitUntilReady();
    err(`worker ${name} serving queue ${values['queue-name'] ?? 'kiln-trials'} on ${values.queue}`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
        err('stopping: the running trial finishes first (signal again to stop now)');
        void w.close().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
