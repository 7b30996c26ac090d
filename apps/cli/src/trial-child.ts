/**
 * The process a `kiln worker` runs one trial in: `kiln train` with the given arguments, reporting
 * each epoch over IPC and waiting for the worker's continue/stop answer. Not a command of its own.
 */
import { Worker } from 'node:worker_threads';
import { KilnError } from '@kiln/core';
import { train } from './commands/train.js';
import { reportingCallback, trialMetrics } from './study/trial.js';
import type { TrialChildMessage, TrialParentMessage } from './study/child-launcher.js';
import { growYoungGenerationAtOnce } from '../bin/young-generation.mjs';

// A trial trains like `kiln train`, so it sizes V8's young generation as the launcher does for
// `kiln train` (V8 reads the flag at each growth, so setting it after the imports still counts).
growYoungGenerationAtOnce();

// A training step never yields to the event loop for long, so the parent-death check runs on its
// own thread: when the worker that started this trial dies (SIGKILL, lost machine), the trial must
// not go on writing into a directory another worker is about to resume from.
const parent = process.ppid;
new Worker(
  `const { workerData } = require('node:worker_threads');
   setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 200).unref();
   setInterval(() => {}, 1 << 30);`,
  { eval: true, workerData: parent },
).unref();

const send = (m: TrialChildMessage) => new Promise<void>((resolve) => process.send!(m, () => resolve()));
let answer: ((stop: boolean) => void) | undefined;
process.on('message', (m: TrialParentMessage) => {
  if (m.type === 'decision') answer?.(m.stop);
});
let finished = false;
process.on('disconnect', () => finished || process.kill(process.pid, 'SIGKILL'));

const cb = reportingCallback(async (epoch, metrics) => {
  const decided = new Promise<boolean>((resolve) => (answer = resolve));
  await send({ type: 'epoch', epoch, metrics });
  return decided;
});

async function main(): Promise<void> {
  try {
    const summary = await train(process.argv.slice(2), () => undefined, (line) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'), { callbacks: [cb] });
    await send({ type: 'done', metrics: trialMetrics(cb.final(), summary) });
  } catch (e) {
    await send({ type: 'error', message: e instanceof KilnError || e instanceof Error ? e.message : String(e) });
    process.exitCode = 1;
  }
  finished = true;
  process.disconnect();
}

void main();
