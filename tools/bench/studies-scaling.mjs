#!/usr/bin/env node
// Scaling of a study on the BullMQ queue on this machine: the same study of N LeNet-5 trials run
// in-process (`kiln search`), then on the queue with 1 and with 2 `kiln worker` processes, against a
// private redis-server. Prints trials per minute of each, the 2-worker/1-worker ratio, and the
// per-trial overhead of the queue path (job hand-off, a kiln train process per trial, its data
// loading) against the in-process path. Worker start-up is not timed (workers are up before the
// study is submitted); everything else is wall-clock from submit to summary.
//
//   npm run build && node tools/bench/studies-scaling.mjs [--trials 4] [--epochs 1] [--limit-train 512]
//
// Needs redis-server (apt-get install -y redis-server) and Fashion-MNIST.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { startRedisServer } = await import(path.join(root, 'packages/studies/dist/index.js'));
const kilnBin = path.join(root, 'apps/cli/bin/kiln.mjs');
const { values: flags } = parseArgs({ options: { trials: { type: 'string', default: '4' }, epochs: { type: 'string', default: '1' }, 'limit-train': { type: 'string', default: '512' } } });
const trials = Number(flags.trials);
// One thread per trial: two workers on two cores do not fight over threads, and results are reproducible.
const env = { ...process.env, KILN_NUM_THREADS: '1' };

const machine = await machineInfo({ python: null });
const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-scaling-'));
const study = path.join(dir, 'study.yaml');
const lrs = Array.from({ length: trials }, (_, i) => (0.001 * (i + 1)).toFixed(4));
writeFileSync(study, `model: lenet5\nepochs: ${flags.epochs}\nlimit-train: ${flags['limit-train']}\nval-split: 64\nlogger: csv\nsearch:\n  lr: [${lrs.join(', ')}]\n`);

function run(args, { wait = true } = {}) {
  const p = spawn(process.execPath, [kilnBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => p.on('exit', (code) => (code === 0 || !wait ? resolve({ out, err }) : reject(new Error(`kiln ${args[0]} exited ${code}: ${err.slice(-2000)}`)))));
  return { p, done, stderr: () => err };
}

async function timed(label, args) {
  const t0 = performance.now();
  const { out } = await run(args).done;
  const seconds = (performance.now() - t0) / 1000;
  const summary = JSON.parse(out.trim().split('\n').pop());
  if (summary.completed !== trials) throw new Error(`${label}: ${summary.completed}/${trials} trials completed`);
  return { label, seconds, perMinute: (trials / seconds) * 60 };
}

const redis = await startRedisServer();
const results = [];
try {
  results.push(await timed('in-process', ['search', '--config', study, '--out', path.join(dir, 'local')]));
  for (const n of [1, 2]) {
    const queue = `scaling-${n}`;
    const workers = Array.from({ length: n }, () => run(['worker', '--queue', redis.url, '--queue-name', queue], { wait: false }));
    while (!workers.every((w) => /serving queue/.test(w.stderr()))) await new Promise((r) => setTimeout(r, 100));
    results.push(await timed(`queue, ${n} worker${n > 1 ? 's' : ''}`, ['search', '--config', study, '--out', path.join(dir, `queue-${n}`), '--queue', redis.url, '--queue-name', queue, '--poll-ms', '100']));
    for (const w of workers) w.p.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.done));
  }
} finally {
  await redis.stop();
}

const [local, one, two] = results;
console.log(`study: ${trials} trials of LeNet-5, ${flags.epochs} epoch(s) on ${flags['limit-train']} Fashion-MNIST examples; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
console.log('| run | wall s | trials/min |');
console.log('|-----|--------|------------|');
for (const r of results) console.log(`| ${r.label} | ${r.seconds.toFixed(1)} | ${r.perMinute.toFixed(2)} |`);
console.log(`2 workers / 1 worker: ${(two.perMinute / one.perMinute).toFixed(2)}x trials per minute`);
console.log(`queue overhead per trial (1 worker vs in-process): ${((one.seconds - local.seconds) / trials).toFixed(2)} s (${(((one.seconds - local.seconds) / local.seconds) * 100).toFixed(0)}% of the in-process time)`);
machine.loadavg_end = loadNow();
console.log(machineLine(machine));
console.log(JSON.stringify({ trials, epochs: Number(flags.epochs), limitTrain: Number(flags['limit-train']), results, machine }));
