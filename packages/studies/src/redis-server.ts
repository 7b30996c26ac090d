import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '@kiln/core';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Working directory for the append-only file (default: a new temporary directory). */
  dir?: string;
  /** The `redis-server` binary (default: from PATH; Debian's package `redis-server`). */
  binary?: string;
}

/** A running private `redis-server`, as {@link startRedisServer} returns it. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`, to pass as a study's or worker's `connection`. */
  readonly url: string;
  /** The TCP port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Its working directory, holding the append-only file: `options.dir` or the temporary one it made (not removed by `stop`). */
  readonly dir: string;
  /** Stops the server (SIGTERM; it flushes its append-only file) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory, with the data it had. */
  restart(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the OS picks one; there is a short window in which another process could take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Runs a private `redis-server` on 127.0.0.1 with the settings BullMQ needs (no eviction) and an
 * append-only file fsynced on every write, so a restart loses nothing — for tests, benchmarks and
 * trying studies on one machine. Production Redis is configured by its operator (docs/distributed.md).
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), 'kiln-redis-'));
  const binary = options.binary ?? 'redis-server';
  let proc: ChildProcess | undefined;
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'];
      const p = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      let log = '';
      const onData = (d: Buffer) => {
        log += d;
        if (/Ready to accept connections/.test(log)) {
          p.stdout?.off('data', onData);
          p.stdout?.resume();
          resolve();
        }
      };
      p.stdout?.on('data', onData);
      p.stderr?.on('data', (d) => (log += d));
      p.on('error', (e) => reject(new NotFoundError('redis-server', [binary], `install it: apt-get install -y redis-server (${e.message})`)));
      p.on('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready:\n${log}`)));
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
  };
}
