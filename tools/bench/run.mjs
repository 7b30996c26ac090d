#!/usr/bin/env node
// `npm run bench`: training and inference throughput of Kiln against its JavaScript peer
// (tfjs-layers model.fit on the same backend and engine), a bare hand-written tfjs loop (to
// measure the trainer's overhead) and PyTorch on the same CPU. Every configuration runs in its
// own child process (so peak RSS is per configuration), and each Kiln configuration is followed
// directly by its PyTorch pair, round after round, so that both see the same machine load.
//
//   node tools/bench/run.mjs [--models lenet5,resnet18] [--rounds 1] [--full]
//                            [--lenet-steps 40] [--resnet-steps 3] [--threads 1,2] [--out FILE]
//                            [--frameworks kiln,pytorch,...] [--backends wasm+onednn,torch-cpu,...]
//
// --full runs more steps and rounds. Writes a table to stdout and JSON to
// bench-results/bench-<time>.json (or --out).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: flags } = parseArgs({
  options: {
    models: { type: 'string', default: 'lenet5,resnet18' },
    rounds: { type: 'string' },
    full: { type: 'boolean', default: false },
    'lenet-steps': { type: 'string' },
    'resnet-steps': { type: 'string' },
    threads: { type: 'string' },
    out: { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
    // Only these frameworks / backends (default: all), for a quick pair on a busy machine.
    frameworks: { type: 'string' },
    backends: { type: 'string' },
  },
});

const int = (name, v, d) => {
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
};
const cores = os.availableParallelism();
const rounds = int('rounds', flags.rounds, flags.full ? 3 : 1);
const threadCounts = (flags.threads ?? [...new Set([1, cores])].join(',')).split(',').map((t) => int('threads', t));
const maxThreads = Math.max(...threadCounts);
const models = flags.models.split(',');
const plan = {
  lenet5: { steps: int('lenet-steps', flags['lenet-steps'], flags.full ? 200 : 40), warmup: 5, inferBatches: flags.full ? 100 : 30, cpuSteps: 3 },
  resnet18: { steps: int('resnet-steps', flags['resnet-steps'], flags.full ? 10 : 2), warmup: 1, inferBatches: flags.full ? 10 : 2 },
};
for (const m of models) if (!plan[m]) throw new Error(`--models: unknown model '${m}' (lenet5, resnet18)`);

// tfjs-layers imports '@tensorflow/tfjs-core'; bundle it against Kiln's engine so its model.fit
// runs on the very backend (and kernels) Kiln uses.
async function layersBundle() {
  const out = path.join(root, 'bench-results', '.cache', 'tfjs-layers.mjs');
  mkdirSync(path.dirname(out), { recursive: true });
  // Written to a private name and renamed, so a concurrent bench never imports half a file.
  const result = await build({
    write: false,
    stdin: { contents: "export * from '@tensorflow/tfjs-layers';", resolveDir: root },
    bundle: true,
    format: 'esm',
    platform: 'node',
    // tfjs-layers' ES build, so that its tfjs-core imports stay imports of Kiln's engine.
    mainFields: ['module', 'main'],
    outfile: out,
    logLevel: 'error',
    plugins: [
      {
        name: 'kiln-engine',
        setup(b) {
          b.onResolve({ filter: /^@tensorflow\/tfjs-core(\/.*)?$/ }, () => ({ path: '@kiln/core/tfjs-core', external: true }));
        },
      },
    ],
  });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, result.outputFiles[0].contents);
  renameSync(tmp, out);
  return out;
}

function runChild(cfg) {
  const label = `${cfg.model} ${cfg.framework} ${cfg.backend} t${cfg.threads}`;
  process.stderr.write(`… ${label}\n`);
  const load0 = loadNow();
  const r =
    cfg.framework === 'pytorch'
      ? spawnSync(flags.python, [path.join(here, 'torch_bench.py'), '--model', cfg.model, '--threads', String(cfg.threads), '--steps', String(cfg.steps), '--warmup', String(cfg.warmup), '--infer-batches', String(cfg.inferBatches)], { encoding: 'utf8', cwd: root })
      : spawnSync(process.execPath, [path.join(here, 'worker.mjs'), JSON.stringify(cfg)], { encoding: 'utf8', cwd: root });
  const loads = { loadavg_start: load0, loadavg_end: loadNow() };
  const line = (r.stdout || '').split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) {
    const lines = (r.stderr || r.error?.message || '').trim().split('\n');
    const why = (lines.find((l) => /Error\b/.test(l)) ?? lines.slice(-3).join(' | ')).trim();
    process.stderr.write(`  failed: ${why}\n`);
    return { ...cfg, error: why || `exit ${r.status}`, ...loads };
  }
  const res = { ...JSON.parse(line.slice(7)), ...loads };
  process.stderr.write(`  train ${res.train_samples_per_sec.toFixed(1)}/s, infer ${res.infer_samples_per_sec.toFixed(1)}/s, rss ${res.peak_rss_mib.toFixed(0)} MiB\n`);
  return res;
}

if (models.includes('resnet18')) console.log("cpu backend skipped on resnet18: the pure-JS kernels need tens of minutes per step");
// Recorded with every result: CPU, ISA flags, oneDNN's ISA, versions, load (tools/bench/machine.mjs).
const machine = await machineInfo({ python: flags.python });
const torch = machine.torch.available ? { version: machine.torch.version } : machine.torch.reason;
if (typeof torch === 'string') console.log(`PyTorch skipped: ${torch}`);
const bundle = await layersBundle();
// The default backend: WASM with oneDNN kernels when the native addon is built.
const { loadDnnl } = await import('@kiln/backend-cpu');
const dnnl = loadDnnl();
const fast = dnnl.loaded ? 'wasm+onednn' : 'wasm';
if (!dnnl.loaded) console.log(`oneDNN kernels not measured: ${dnnl.reason}`);

/**
 * The configurations of one round, each Kiln one directly followed by its PyTorch pair. The bare
 * loop runs after that pair in even rounds and before the Kiln run in odd ones, so that neither side
 * of the trainer-overhead ratio always inherits the machine state another process left behind.
 */
function roundConfigs(round) {
  const list = [];
  for (const model of models) {
    const p = plan[model];
    const base = { model, steps: p.steps, warmup: p.warmup, inferBatches: p.inferBatches };
    // ResNet-18 steps take seconds each: by default only at full thread count.
    const counts = model === 'resnet18' && !flags.full && !flags.threads ? [maxThreads] : threadCounts;
    for (const t of counts) {
      const bare = { ...base, framework: 'bare', backend: fast, threads: t };
      if (round % 2 === 1) list.push(bare);
      list.push({ ...base, framework: 'kiln', backend: fast, threads: t });
      if (typeof torch !== 'string') list.push({ ...base, framework: 'pytorch', backend: 'torch-cpu', threads: t });
      if (round % 2 === 0) list.push(bare);
      // Without oneDNN: what the portable WASM kernels alone do (browsers, machines without the addon).
      if (fast !== 'wasm') list.push({ ...base, framework: 'kiln', backend: 'wasm', threads: t });
    }
    list.push({ ...base, framework: 'tfjs-layers', backend: fast, threads: Math.max(...counts), layersBundle: bundle });
    // The pure-JS reference backend is ~40x slower than wasm: a few LeNet-5 steps show where it
    // stands; on ResNet-18 one step would take tens of minutes, so it is left out.
    if (model === 'lenet5') {
      const cpuBase = { ...base, steps: p.cpuSteps, warmup: 1, inferBatches: 1 };
      list.push({ ...cpuBase, framework: 'kiln', backend: 'cpu', threads: 1 });
      list.push({ ...cpuBase, framework: 'tfjs-layers', backend: 'cpu', threads: 1, layersBundle: bundle });
    }
  }
  const keep = (v, only) => !only || only.split(',').includes(v);
  return list.filter((c) => keep(c.framework, flags.frameworks) && keep(c.backend, flags.backends));
}

const started = new Date();
machine.loadavg_start = loadNow();
const runs = [];
for (let r = 0; r < rounds; r++) for (const cfg of roundConfigs(r)) runs.push({ round: r, ...runChild(cfg) });
machine.loadavg_end = loadNow();

// Medians over rounds per configuration.
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const key = (r) => `${r.model}|${r.framework}|${r.backend}|${r.threads}`;
const groups = new Map();
for (const r of runs) if (!r.error) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
const summary = [...groups.values()].map((rs) => ({
  model: rs[0].model,
  framework: rs[0].framework,
  backend: rs[0].backend,
  threads: rs[0].threads,
  device: rs[0].device,
  rounds: rs.length,
  train_samples_per_sec: median(rs.map((r) => r.train_samples_per_sec)),
  infer_samples_per_sec: median(rs.map((r) => r.infer_samples_per_sec)),
  train_samples_per_cpu_sec: median(rs.map((r) => r.train_samples_per_cpu_sec)),
  infer_samples_per_cpu_sec: median(rs.map((r) => r.infer_samples_per_cpu_sec)),
  peak_rss_mib: Math.max(...rs.map((r) => r.peak_rss_mib)),
}));
const find = (model, framework, backend, threads) => summary.find((s) => s.model === model && s.framework === framework && s.backend === backend && s.threads === threads);
for (const s of summary) {
  const pt = find(s.model, 'pytorch', 'torch-cpu', s.threads);
  s.vs_pytorch_train = pt ? s.train_samples_per_sec / pt.train_samples_per_sec : null;
  s.vs_pytorch_infer = pt ? s.infer_samples_per_sec / pt.infer_samples_per_sec : null;
  // The same ratios per CPU-second of the thread that runs the step: at one thread, what each
  // side's work costs whatever else ran on the machine; with more threads the others' share is
  // missing, so there is no such ratio.
  const oneThread = pt && s.threads === 1;
  s.vs_pytorch_train_cpu = oneThread ? s.train_samples_per_cpu_sec / pt.train_samples_per_cpu_sec : null;
  s.vs_pytorch_infer_cpu = oneThread ? s.infer_samples_per_cpu_sec / pt.infer_samples_per_cpu_sec : null;
  if (s.framework === 'kiln') {
    const bare = find(s.model, 'bare', s.backend, s.threads);
    // Positive: the Trainer is that much slower than the hand-written loop.
    s.trainer_overhead = bare ? bare.train_samples_per_sec / s.train_samples_per_sec - 1 : null;
    const one = find(s.model, 'kiln', s.backend, 1);
    s.thread_speedup = one && s.threads > 1 ? s.train_samples_per_sec / one.train_samples_per_sec : null;
  }
}

const f = (x, d = 1) => (x == null ? '—' : x.toFixed(d));
const header = ['model', 'framework', 'backend', 'thr', 'train/s', 'infer/s', 'RSS MiB', 'train ×PT', 'infer ×PT', 'overhead', 'thr speedup', 'train ×PT cpu', 'infer ×PT cpu'];
const rows = summary.map((s) => [
  s.model, s.framework, s.backend, String(s.threads), f(s.train_samples_per_sec), f(s.infer_samples_per_sec), f(s.peak_rss_mib, 0),
  f(s.vs_pytorch_train, 2), f(s.vs_pytorch_infer, 2), s.trainer_overhead == null ? '—' : `${(100 * s.trainer_overhead).toFixed(1)}%`, f(s.thread_speedup, 2),
  f(s.vs_pytorch_train_cpu, 2), f(s.vs_pytorch_infer_cpu, 2),
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const r of rows) console.log(line(r));
console.log(machineLine(machine));
const outFile = flags.out ?? path.join(root, 'bench-results', `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify({ started: started.toISOString(), machine, batch_size: 64, plan, rounds, summary, runs }, null, 2) + '\n');
console.log(`results: ${path.relative(process.cwd(), outFile)}`);
