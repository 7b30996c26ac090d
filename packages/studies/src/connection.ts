import { ConfigError } from '@kiln/core';
import type { PrunerConfig } from '@kiln/trainer';

/** The Redis connection settings Kiln hands to BullMQ (a subset of ioredis' options). */
export interface RedisConnection {
  /** Host name or IP address of the Redis server (`127.0.0.1` when a URL names none). */
  host: string;
  /** TCP port of the Redis server (6379 when a URL names none). */
  port: number;
  /** User for Redis ACL authentication (Redis 6 and later). */
  username?: string;
  /** Password for `AUTH`, alone or with `username`. */
  password?: string;
  /** Logical database number to `SELECT` (Redis' default: 0). */
  db?: number;
  /** Present (as `{}`) to connect over TLS with Node's default settings, as a `rediss://` URL does. */
  tls?: Record<string, never>;
}

/**
 * `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS) as connection settings.
 * Every connection Kiln opens waits for Redis to come back instead of failing commands
 * (`maxRetriesPerRequest: null`, ioredis' default reconnect), so a restarted Redis costs a pause.
 */
export function redisConnection(connection: string | RedisConnection): RedisConnection & {
  /** Always `null`: commands wait for Redis to come back instead of failing after some retries. */
  maxRetriesPerRequest: null;
} {
  if (typeof connection !== 'string') return { ...connection, maxRetriesPerRequest: null };
  let url: URL;
  try {
    url = new URL(connection);
  } catch {
    throw new ConfigError('--queue', 'a Redis URL such as redis://127.0.0.1:6379', connection);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('--queue', 'a redis:// or rediss:// URL', connection);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new ConfigError('--queue', 'a database number after the port (redis://host:6379/0)', connection);
  return {
    host: url.hostname || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db !== '' ? { db: Number(db) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** The BullMQ queue studies use unless told otherwise. */
export const DEFAULT_QUEUE = 'kiln-trials';

/** What a queued trial carries. */
export interface TrialJobData {
  /** The study the task belongs to; with the task's key it makes the job's id. */
  study: string;
  /** The task to run, as the study's executor built it (a `TrialTask`). */
  task: {
    /** Unique within the study and the same on every submission: `trial-3`, `trial-3.fold-1`. */
    key: string;
    /** Index of the trial within the study, from 0. */
    trial: number;
    /** The fold this task validates on, when the study cross-validates. */
    fold?: number;
    /** The trial's parameters (searched and fixed), handed to the trial function. */
    params: Record<string, unknown>;
  };
  /** The study's pruner, applied by the worker to the task's epoch reports; absent when nothing is pruned. */
  pruner?: PrunerConfig;
}

/** What a finished trial job returns. */
export interface TrialJobResult {
  /** The trial function's final metrics (those at the stopping epoch for a pruned trial). */
  metrics: Record<string, number>;
  /** Whether the pruner stopped the trial early. */
  pruned: boolean;
}

/** One job per study and task: the id is what makes a second submission reuse finished work. */
export function trialJobId(study: string, key: string): string {
  return `${study}.${key}`;
}

/**
 * Wraps a reporter of connection problems so that a message repeated while Redis is down (ioredis
 * retries every second or so) is printed once, with a note that the process keeps waiting.
 */
export function connectionReporter(say: (line: string) => void): (e: Error) => void {
  let last = '';
  return (e) => {
    if (e.message === last) return;
    last = e.message;
    say(`redis: ${e.message} (waiting for it to answer)`);
  };
}
