import { Queue, type Job } from 'bullmq';
import { ProgressTracker, type ExecuteOptions, type Executor, type TrialOutcome, type TrialTask } from '@kiln/trainer';
import { DEFAULT_QUEUE, connectionReporter, redisConnection, trialJobId, type RedisConnection, type TrialJobData, type TrialJobResult } from './connection.js';

export interface QueueExecutorOptions {
  /** `redis://host:port` or connection settings. */
  connection: string | RedisConnection;
  /** BullMQ queue name; workers must use the same (default `kiln-trials`). */
  queue?: string;
  /**
   * Starts per trial before it is reported failed (default 3). A worker that dies mid-trial does not
   * use one up: its job stalls and is taken over (see `startTrialWorker`'s `maxStalledCount`).
   */
  attempts?: number;
  /** Wait before a failed attempt is retried, ms (default 1000). */
  backoffMs?: number;
  /** How often the study's jobs are looked at, ms (default 500). */
  pollMs?: number;
  /** Told about connection problems (once per distinct message); the executor keeps waiting for Redis. */
  onConnectionError?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a study's tasks as BullMQ jobs, for `kiln worker` processes (or `startTrialWorker`) on any
 * number of machines, and gathers their results. Each task is one job whose id is the study id and
 * the task key, so submitting the same study again reuses finished trials (failed ones are retried)
 * instead of training them again. The trial function given to `run` is not used here: workers run
 * their own, which must compute the same thing.
 */
export function queueExecutor(options: QueueExecutorOptions): Executor {
  const name = options.queue ?? DEFAULT_QUEUE;
  const attempts = options.attempts ?? 3;
  const pollMs = options.pollMs ?? 500;
  return {
    name: `queue ${name}`,
    async run<P>(tasks: TrialTask<P>[], _fn: unknown, run: ExecuteOptions): Promise<TrialOutcome<P>[]> {
      const queue = new Queue<TrialJobData, TrialJobResult>(name, { connection: redisConnection(options.connection) });
      queue.on('error', connectionReporter(options.onConnectionError ?? (() => undefined)));
      const submit = (task: TrialTask<P>) =>
        queue.add('trial', { study: run.study, task: task as TrialJobData['task'], pruner: run.pruner }, {
          jobId: trialJobId(run.study, task.key),
          attempts,
          backoff: { type: 'fixed', delay: options.backoffMs ?? 1000 },
          removeOnComplete: false,
          removeOnFail: false,
        });
      try {
        for (const task of tasks) {
          const job = await queue.getJob(trialJobId(run.study, task.key));
          if (!job) await submit(task);
          else if (await job.isFailed()) await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        }
        const progress = new ProgressTracker(tasks.length, run);
        const outcomes = new Map<string, TrialOutcome<P>>();
        while (outcomes.size < tasks.length) {
          for (const task of tasks) {
            if (outcomes.has(task.key)) continue;
            // State first (one round trip per task and poll); the job itself only once it has
            // finished, when its fields are final.
            const id = trialJobId(run.study, task.key);
            const state = await queue.getJobState(id);
            if (state === 'unknown') {
              // A Redis that restarted without persistence forgot the job: submit it again.
              await submit(task);
            } else if (state === 'completed' || state === 'failed') {
              const job = (await queue.getJob(id)) as Job<TrialJobData, TrialJobResult>;
              const attempts = Math.max(job.attemptsStarted ?? 0, job.attemptsMade, 1);
              const outcome: TrialOutcome<P> =
                state === 'completed'
                  ? { task, status: job.returnvalue.pruned ? 'pruned' : 'completed', metrics: job.returnvalue.metrics, attempts }
                  : { task, status: 'failed', metrics: {}, error: job.failedReason, attempts };
              outcomes.set(task.key, outcome);
              progress.finished(outcome);
            } else if (state === 'active' && !progress.running.has(task.key)) {
              progress.started(task.key);
            } else if (state !== 'active' && progress.running.has(task.key)) {
              // Taken back from a worker that stopped answering: waiting for the next one.
              progress.running.delete(task.key);
            }
          }
          if (outcomes.size < tasks.length) await sleep(pollMs);
        }
        return tasks.map((t) => outcomes.get(t.key) as TrialOutcome<P>);
      } finally {
        await queue.close();
      }
    },
  };
}
