import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TrainLauncher } from './trial.js';

/** Messages between a worker and its trial process (over the IPC channel). */
export type TrialChildMessage =
  | { type: 'epoch'; epoch: number; metrics: Record<string, number> }
  | { type: 'done'; metrics: Record<string, number> }
  | { type: 'error'; message: string };
export type TrialParentMessage = { type: 'decision'; stop: boolean };

/** The built trial entry, found through the package (the same from dist/ and from sources under test). */
function childScript(): string {
  const here = typeof __filename === 'string' ? pathToFileURL(__filename).href : import.meta.url;
  return path.join(path.dirname(createRequire(here).resolve('@kiln/cli/package.json')), 'dist', 'trial-child.js');
}

/**
 * Runs `kiln train` in a child process. A worker keeps its own event loop free this way, so its
 * queue lock is renewed while the trial computes (a training step never yields to timers), and a
 * trial that crashes takes only itself down. The child watches this process and exits if it dies.
 */
export function trainInChild(options: { onStderr?: (text: string) => void; onStart?: (pid: number) => void } = {}): TrainLauncher {
  return (argv, report) =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [childScript(), ...argv], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      if (p.pid !== undefined) options.onStart?.(p.pid);
      let tail = '';
      let result: Record<string, number> | undefined;
      let error: string | undefined;
      p.stderr?.on('data', (d: Buffer) => {
        tail = (tail + d.toString()).slice(-4000);
        options.onStderr?.(d.toString());
      });
      p.on('message', (m: TrialChildMessage) => {
        if (m.type === 'epoch') {
          report(m.epoch, m.metrics).then(
            (stop) => p.connected && p.send({ type: 'decision', stop } satisfies TrialParentMessage),
            (e: Error) => {
              error = e.message;
              p.kill('SIGKILL');
            },
          );
        } else if (m.type === 'done') result = m.metrics;
        else if (m.type === 'error') error = m.message;
      });
      p.on('error', reject);
      p.on('exit', (code, signal) => {
        if (code === 0 && result) resolve(result);
        else reject(new Error(error ?? `kiln train exited with ${signal ?? code}: ${tail.trim().split('\n').slice(-3).join(' | ')}`));
      });
    });
}
