#!/usr/bin/env node
// End to end: the `kiln train` command against a PyTorch script doing the same work
// (tools/bench/torch_train.py: the same IDX files, split, standardisation, batch size, optimizer,
// epochs, validation, checkpoints and test passes), each a fresh process timed from spawn to exit,
// alternated round after round so that both see the same machine load.
//
//   node tools/bench/e2e.mjs [--cases lenet5,resnet18] [--rounds 3] [--kiln-threads default]
//                            [--torch-threads 1,2] [--resnet-train 1280] [--resnet-test 500]
//                            [--lenet-epochs 2] [--out FILE]
//
// lenet5:   the README's job, `kiln train --model lenet5 --dataset fashion-mnist` (55,000 train,
//           5,000 validation, 10,000 test, --lenet-epochs epochs).
// resnet18: `kiln train --model resnet18` for 1 epoch on the first --resnet-train training and
//           --resnet-test test images of Fashion-MNIST, written as IDX files under
//           bench-results/.cache (both sides read the same files).
// --kiln-threads: `default` (the CLI's own choice, no flag) and/or numbers (`--threads N`).
// PyTorch runs at each --torch-threads count; its best median is the one compared against.
//
// Per configuration: median, min and max of the wall time and spread = (max − min) / median.
// Writes a markdown table and machine line to stdout and JSON to bench-results/e2e-<time>.json.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: flags } = parseArgs({
  options: {
    cases: { type: 'string', default: 'lenet5,resnet18' },
    rounds: { type: 'string', default: '3' },
    'kiln-threads': { type: 'string', default: 'default' },
    'torch-threads': { type: 'string', default: '1,2' },
    'resnet-train': { type: 'string', default: '1280' },
    'resnet-test': { type: 'string', default: '500' },
    'lenet-epochs': { type: 'string', default: '2' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'data-dir': { type: 'string', default: process.env.KILN_DATA_DIR ?? '/usr/share/datasets/fashion-mnist' },
    out: { type: 'string' },
  },
});
const int = (name, v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
};
const rounds = int('rounds', flags.rounds);
const cases = flags.cases.split(',');
for (const c of cases) if (c !== 'lenet5' && c !== 'resnet18') throw new Error(`--cases: unknown case '${c}' (lenet5, resnet18)`);
const kilnThreads = flags['kiln-threads'].split(',').map((t) => (t === 'default' ? 'default' : int('kiln-threads', t)));
const torchThreads = flags['torch-threads'].split(',').map((t) => int('torch-threads', t));
const FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
for (const f of FILES) if (!existsSync(path.join(flags['data-dir'], f))) throw new Error(`Fashion-MNIST not found: ${path.join(flags['data-dir'], f)} (apt-get install dataset-fashion-mnist, or --data-dir)`);

/** The first `n` records of a gzipped IDX file, as a gzipped IDX file (header count rewritten). */
function idxHead(file, n) {
  const data = gunzipSync(readFileSync(file));
  const ndim = data[3];
  const dims = Array.from({ length: ndim }, (_, i) => data.readUInt32BE(4 + 4 * i));
  const record = dims.slice(1).reduce((a, b) => a * b, 1);
  const header = Buffer.from(data.subarray(0, 4 + 4 * ndim));
  header.writeUInt32BE(Math.min(n, dims[0]), 4);
  return gzipSync(Buffer.concat([header, data.subarray(4 + 4 * ndim, 4 + 4 * ndim + Math.min(n, dims[0]) * record)]));
}

/** A Fashion-MNIST directory holding the first `train` training and `test` test examples. */
function subsetDir(train, test) {
  const dir = path.join(root, 'bench-results', '.cache', `fashion-mnist-${train}-${test}`);
  if (FILES.every((f) => existsSync(path.join(dir, f)))) return dir;
  mkdirSync(dir, { recursive: true });
  for (const f of FILES) writeFileSync(path.join(dir, f), idxHead(path.join(flags['data-dir'], f), f.startsWith('train') ? train : test));
  return dir;
}

const plans = {
  lenet5: { model: 'lenet5', dataDir: flags['data-dir'], epochs: int('lenet-epochs', flags['lenet-epochs']) },
  resnet18: { model: 'resnet18', dataDir: null, epochs: 1 },
};
if (cases.includes('resnet18')) plans.resnet18.dataDir = subsetDir(int('resnet-train', flags['resnet-train']), int('resnet-test', flags['resnet-test']));

const scratch = path.join(os.tmpdir(), `kiln-e2e-${process.pid}`);
const kilnBin = path.join(root, 'apps', 'cli', 'bin', 'kiln.mjs');

/**
 * Runs a command, noting when (seconds after spawn) each stderr line arrived, so that a slow run
 * can be split into start-up, data loading, epochs and test passes.
 */
function runTimed(cmd, args) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const marks = [];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      const lines = (partial + d).split(/\r|\n/);
      partial = lines.pop();
      const t = (performance.now() - t0) / 1000;
      for (const l of lines) if (l.trim()) marks.push([t, l]);
    });
    child.on('error', (e) => resolve({ status: null, stdout, stderr: stderr + String(e), marks }));
    child.on('close', (status) => resolve({ status, stdout, stderr, marks, wall: (performance.now() - t0) / 1000 }));
  });
}

/** Seconds spent in each phase of a `kiln train` run, from the times its stderr lines arrived. */
function kilnPhases(marks, wall) {
  const at = (re) => marks.find(([, l]) => re.test(l))?.[0];
  const backend = at(/^backend: /);
  const data = at(/^model: /);
  const epochs = marks.filter(([, l]) => /^epoch \d+: train_loss /.test(l)).map(([t]) => t);
  const test = at(/^test: confusion matrix/);
  if (backend === undefined || data === undefined || epochs.length === 0) return null;
  return {
    startup: backend,
    data: data - backend,
    epochs: epochs.map((t, i) => t - (i === 0 ? data : epochs[i - 1])),
    test: test === undefined ? null : test - epochs[epochs.length - 1],
    rest: wall - (test ?? epochs[epochs.length - 1]),
  };
}

/** Runs one configuration in a fresh process; returns its result with wall time and load averages. */
async function runOne(cfg, round) {
  const out = path.join(scratch, `${cfg.model}-${cfg.framework}-${cfg.threads}-${round}`);
  rmSync(out, { recursive: true, force: true });
  const label = `${cfg.model} ${cfg.framework} threads=${cfg.threads}`;
  process.stderr.write(`… round ${round + 1}: ${label}\n`);
  const load0 = loadNow();
  let r;
  if (cfg.framework === 'kiln') {
    const args = [kilnBin, 'train', '--model', cfg.model, '--dataset', `fashion-mnist:${cfg.dataDir}`, '--epochs', String(cfg.epochs), '--out', out];
    if (cfg.threads !== 'default') args.push('--threads', String(cfg.threads));
    r = await runTimed(process.execPath, args);
  } else {
    const args = [path.join(here, 'torch_train.py'), '--model', cfg.model, '--data-dir', cfg.dataDir, '--epochs', String(cfg.epochs), '--threads', String(cfg.threads), '--out', out];
    r = await runTimed(flags.python, args);
  }
  const wall = r.wall;
  const load1 = loadNow();
  const lines = (r.stdout || '').trim().split('\n');
  let res;
  try {
    res = cfg.framework === 'kiln' ? JSON.parse(lines[lines.length - 1]) : JSON.parse(lines.find((l) => l.startsWith('RESULT ')).slice(7));
  } catch {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ');
    process.stderr.write(`  failed: ${why}\n`);
    return { ...cfg, round, error: why, loadavg_start: load0, loadavg_end: load1 };
  }
  rmSync(out, { recursive: true, force: true });
  const trainExamples = res.train_examples;
  const row = {
    ...cfg,
    round,
    wall_seconds: wall,
    // Training examples × epochs per second of the whole command: start-up, data, validation and test included.
    e2e_samples_per_sec: (trainExamples * cfg.epochs) / wall,
    train_samples_per_sec: cfg.framework === 'kiln' ? res.train_samples_per_sec : res.last_epoch_samples_per_sec,
    test_accuracy: res.test_accuracy,
    device: res.device,
    threads_used: cfg.framework === 'kiln' ? (res.threads ?? null) : res.threads,
    train_examples: trainExamples,
    peak_rss_mib: res.peak_rss_mib ?? null,
    phases:
      cfg.framework === 'kiln'
        ? kilnPhases(r.marks, wall)
        : { startup: wall - res.in_process_seconds + res.import_seconds, data: res.data_seconds, epochs: res.epoch_seconds, test: res.test_seconds, rest: null },
    loadavg_start: load0,
    loadavg_end: load1,
  };
  process.stderr.write(`  ${wall.toFixed(1)} s, ${row.e2e_samples_per_sec.toFixed(0)} samples/s end to end, test_acc ${res.test_accuracy?.toFixed(4)}, ${res.device}, load ${load0[0]} → ${load1[0]}\n`);
  return row;
}

/** The configurations of one round; Kiln first in even rounds and last in odd ones. */
function roundConfigs(round) {
  const list = [];
  for (const c of cases) {
    const p = plans[c];
    const kiln = kilnThreads.map((t) => ({ ...p, framework: 'kiln', threads: t }));
    const torch = torchThreads.map((t) => ({ ...p, framework: 'pytorch', threads: t }));
    list.push(...(round % 2 === 0 ? [...kiln, ...torch] : [...torch, ...kiln]));
  }
  return list;
}

const started = new Date();
const machine = await machineInfo({ python: flags.python });
if (!machine.torch.available) console.log(`PyTorch skipped: ${machine.torch.reason}`);
const runs = [];
for (let r = 0; r < rounds; r++) {
  for (const cfg of roundConfigs(r)) if (cfg.framework === 'kiln' || machine.torch.available) runs.push(await runOne(cfg, r));
}
machine.loadavg_end = loadNow();
rmSync(scratch, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const groups = new Map();
for (const r of runs) {
  if (r.error) continue;
  const k = `${r.model}|${r.framework}|${r.threads}`;
  groups.set(k, [...(groups.get(k) ?? []), r]);
}
const summary = [...groups.values()].map((rs) => {
  const walls = rs.map((r) => r.wall_seconds);
  const med = median(walls);
  return {
    model: rs[0].model,
    framework: rs[0].framework,
    threads: rs[0].threads,
    threads_used: [...new Set(rs.map((r) => r.threads_used))],
    rounds: rs.length,
    wall_median: med,
    wall_min: Math.min(...walls),
    wall_max: Math.max(...walls),
    spread: (Math.max(...walls) - Math.min(...walls)) / med,
    e2e_samples_per_sec: median(rs.map((r) => r.e2e_samples_per_sec)),
    train_samples_per_sec: median(rs.map((r) => r.train_samples_per_sec)),
    test_accuracy: median(rs.map((r) => r.test_accuracy)),
    peak_rss_mib: Math.max(...rs.map((r) => r.peak_rss_mib ?? 0)) || null,
  };
});
for (const s of summary) {
  const torch = summary.filter((t) => t.model === s.model && t.framework === 'pytorch');
  const best = torch.length ? torch.reduce((a, b) => (a.wall_median <= b.wall_median ? a : b)) : null;
  s.vs_best_pytorch = best ? best.wall_median / s.wall_median : null;
  s.best_pytorch_threads = best?.threads ?? null;
}

const f = (x, d = 1) => (x == null ? '—' : x.toFixed(d));
const header = ['model', 'framework', 'threads', 'rounds', 'wall s (median)', 'min–max', 'spread', 'samples/s e2e', 'train samples/s', 'test acc', '× best PT'];
const rows = summary.map((s) => [
  s.model, s.framework, s.threads === 'default' ? `default (${s.threads_used.join('/')})` : String(s.threads), String(s.rounds), f(s.wall_median),
  `${f(s.wall_min)}–${f(s.wall_max)}`, `${(100 * s.spread).toFixed(1)}%`, f(s.e2e_samples_per_sec, 0), f(s.train_samples_per_sec, 0), f(s.test_accuracy, 4),
  s.framework === 'kiln' ? `${f(s.vs_best_pytorch, 2)} (PT ${s.best_pytorch_threads}t)` : '—',
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const r of rows) console.log(line(r));

// Where each run's time went: start-up (spawn to backend/imports), data (read, split, statistics,
// model built), each epoch (training, validation, checkpoints), test (the test passes and report).
console.log('');
console.log('| round | framework | threads | wall s | start-up | data | epochs | test | load start → end |');
console.log('|-------|-----------|---------|--------|----------|------|--------|------|------------------|');
for (const x of runs) {
  const t = x.threads === 'default' ? `default (${x.threads_used})` : String(x.threads);
  if (x.error) {
    console.log(`| ${x.round + 1} | ${x.model} ${x.framework} | ${t} | failed: ${x.error} | | | | | |`);
    continue;
  }
  const p = x.phases ?? {};
  console.log(`| ${x.round + 1} | ${x.model} ${x.framework} | ${t} | ${f(x.wall_seconds)} | ${f(p.startup)} | ${f(p.data)} | ${(p.epochs ?? []).map((e) => f(e)).join(' + ')} | ${f(p.test)} | ${x.loadavg_start[0]} → ${x.loadavg_end[0]} |`);
}
console.log(machineLine(machine));

const outFile = flags.out ?? path.join(root, 'bench-results', `e2e-${started.toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify({ started: started.toISOString(), machine, flags, plans, summary, runs }, null, 2) + '\n');
console.log(`results: ${path.relative(process.cwd(), outFile)}`);
