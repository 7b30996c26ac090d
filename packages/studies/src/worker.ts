import { Worker, type Job } from 'bullmq';
import { trialReporter, type TrialFunction } from '@kiln/trainer';
import { DEFAULT_QUEUE, connectionReporter, redisConnection, type RedisConnection, type TrialJobData, type TrialJobResult } from './connection.js';
import { redisRungStore } from './redis-rung-store.js';

/** Options of {@link startTrialWorker}. */
export interface TrialWorkerOptions {
  /** `redis://host:port` or connection settings. */
  connection: string | RedisConnection;
  /** Runs one task; the same function the study would run in-process. */
  run: TrialFunction;
  /** BullMQ queue name (default `kiln-trials`). */
  queue?: string;
  /** Trials run at once by this worker (default 1: a trial uses the machine's cores). */
  concurrency?: number;
  /**
   * How long a job stays this worker's without a lock renewal, ms (default 30000). A worker that
   * dies is noticed this long after its last renewal; lower it to recover sooner.
   */
  lockDuration?: number;
  /** How often this worker looks for jobs of dead workers, ms (default 30000). */
  stalledInterval?: number;
  /** Take-overs of one job before it is failed as poison (default 3). */
  maxStalledCount?: number;
  /** A name for this worker in logs (default: BullMQ's). */
  name?: string;
  /** Called for what a person running the worker wants to see. */
  onEvent?: (line: string) => void;
}

/** A running trial worker, as {@link startTrialWorker} returns it. */
export interface TrialWorker {
  /** The underlying BullMQ worker, for its events (`completed`, `failed`, …), `pause()` and `resume()`. */
  readonly worker: Worker<TrialJobData, TrialJobResult>;
  /** Stops taking jobs and waits for the running ones to finish. */
  close(): Promise<void>;
}

/**
 * A BullMQ worker that runs study tasks with `options.run`. Each epoch report goes to the job's
 * progress and, when the study has a pruner, to the study's rungs in Redis, so every worker prunes
 * by the same rule. A job whose worker died (no lock renewal) is moved back to the queue by any
 * other worker's stall check and started again: a trial that resumes from its own checkpoint loses
 * only the steps since that checkpoint.
 */
export function startTrialWorker(options: TrialWorkerOptions): TrialWorker {
  const say = options.onEvent ?? (() => undefined);
  const worker: Worker<TrialJobData, TrialJobResult> = new Worker<TrialJobData, TrialJobResult>(
    options.queue ?? DEFAULT_QUEUE,
    async (job: Job<TrialJobData, TrialJobResult>) => {
      const { study, task, pruner } = job.data;
      say(`trial ${task.key} of study ${study}: started (attempt ${job.attemptsStarted ?? job.attemptsMade + 1})`);
      const reporter = trialReporter(pruner, redisRungStore(await worker.client, study), task.key);
      const metrics = await options.run(task, {
        report: async (epoch, m) => {
          await job.updateProgress({ epoch, metrics: m });
          return reporter.report(epoch, m);
        },
      });
      say(`trial ${task.key}: ${reporter.pruned ? 'pruned' : 'completed'} ${JSON.stringify(metrics)}`);
      return { metrics, pruned: reporter.pruned };
    },
    {
      connection: redisConnection(options.connection),
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 3,
      ...(options.name ? { name: options.name } : {}),
    },
  );
  worker.on('failed', (job, e) => say(`trial ${job?.data.task.key ?? '?'}: attempt failed: ${e.message}`));
  worker.on('stalled', (id) => say(`job ${id} stalled (its worker stopped answering): back in the queue`));
  worker.on('error', connectionReporter(say));
  return { worker, close: () => worker.close() };
}
