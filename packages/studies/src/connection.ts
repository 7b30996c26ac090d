import { ConfigError } from '@kiln/core';
import type { PrunerConfig } from '@kiln/trainer';

/** The Redis connection settings Kiln hands to BullMQ (a subset of ioredis' options). */
export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: Record<string, never>;
}

/**
 * `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS) as connection settings.
 * Every connection Kiln opens waits for Redis to come back instead of failing commands
 * (`maxRetriesPerRequest: null`, ioredis' default reconnect), so a restarted Redis costs a pause.
 */
export function redisConnection(connection: string | RedisConnection): RedisConnection & { maxRetriesPerRequest: null } {
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
  study: string;
  task: { key: string; trial: number; fold?: number; params: Record<string, unknown> };
  pruner?: PrunerConfig;
}

/** What a finished trial job returns. */
export interface TrialJobResult {
  metrics: Record<string, number>;
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
