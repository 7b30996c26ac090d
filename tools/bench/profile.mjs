// Where a training step's time goes, per kernel and per phase:
//
//   node tools/bench/profile.mjs [lenet5|resnet18] [batch] [steps] [--isa native,avx2] [--rounds N] [--infer] [--warmup N]
//
// --warmup: untimed steps before the timed ones (default 2).
// --infer profiles inference instead (eval mode, no gradient): one phase, `forward`.
// Without --isa: one process, the backend as configured (KILN_NUM_THREADS, KILN_DNNL,
// KILN_BACKEND=cpu apply), averaged over `steps` steps (default 10). Every kernel registered for
// the active backend is wrapped with a timer (kernels run synchronously on the WASM and cpu
// backends, so a call's wall time is the kernel's time), and the step is split into its phases:
// forward + backward (tf.variableGrads), the optimizer step (Adam) and the host read of the loss.
// Time in a phase outside any kernel is tfjs's per-op bookkeeping (tape, reference counts, heap
// allocation) and JavaScript around it. Times are the process's CPU time (process.cpuUsage(), all
// threads), not wall time: on a shared machine a wall clock also counts the time other processes
// hold the core, while CPU time counts only this step's work. The step's CPU time of the thread
// running it (Linux's schedstat; the measure tools/bench/run.mjs's `×PT cpu` ratios use) is printed
// beside it: with one compute thread it agrees with the wall time on an idle machine, and the
// process's CPU time exceeds both while V8's helper threads compile the step's JavaScript with
// TurboFan (about 250 ms of CPU over LeNet-5's first few hundred steps; `--warmup 600` leaves
// ~0.1 ms a step; docs/benchmarks.md, "Round three").
//
// With --isa: one child process per ISA level and round (alternating, so both see the same machine
// load; `native` is what the CPU has, `avx2` caps oneDNN with ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA,
// which oneDNN 2.6 reads), each also counting oneDNN's primitive executions per step from its
// verbose log, and prints the medians side by side as a Markdown table. A level may carry a
// layout, `avx2:nhwc` or `avx2:blocked`, forcing the addon's choice of activation layout for
// convolutions (KILN_DNNL_BLOCKED).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    isa: { type: 'string' },
    infer: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    child: { type: 'boolean', default: false },
  },
});
const [name = 'lenet5', batchArg = '64', stepsArg = '10'] = positionals;
const steps = Number(stepsArg);
/** Milliseconds of CPU this process has used, all threads. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** Milliseconds of CPU the main thread (the one running the step) has used; the process's elsewhere. */
const mainThreadMs = () => {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return cpuMs();
  }
};

// The machine (CPU, ISA flags, oneDNN's level, load at the start) goes with every result.
const machine = flags.child ? null : await machineInfo({ python: null });
if (flags.isa) await compareIsas();
else await profile();

async function profile() {
  const { tf, manualSeed } = await import('@kiln/core');
  const { cpuBackend, wasmBackend } = await import('@kiln/backend-cpu');
  const { crossEntropy } = await import('@kiln/layers');
  const { Adam } = await import('@kiln/optim');
  const { kilnModel } = await import('./models.mjs');

  const backend = process.env.KILN_BACKEND === 'cpu' ? cpuBackend() : wasmBackend();
  await backend.init();
  manualSeed(0);
  const B = Number(batchArg);
  const model = kilnModel(name);
  const vars = model.trainableVariables();
  const opt = new Adam(vars, { lr: 1e-3 });
  const x = tf.randomUniform([B, 28, 28, 1]);
  const y = tf.tensor1d(Array.from({ length: B }, (_, i) => i % 10), 'int32');

  const phases = flags.infer ? { forward: 0, 'host read': 0 } : { 'forward + backward': 0, optimizer: 0, 'host read': 0 };
  /** Kernel time and calls per phase, and per kernel name. */
  const inPhase = Object.fromEntries(Object.keys(phases).map((p) => [p, { ms: 0, calls: 0 }]));
  const times = new Map();
  let phase = Object.keys(phases)[0];
  const timed = (p, fn) => {
    phase = p;
    const t0 = cpuMs();
    const out = fn();
    phases[p] += cpuMs() - t0;
    return out;
  };
  const infer = () => {
    const logits = timed('forward', () => tf.tidy(() => model.forward(x)));
    timed('host read', () => logits.dataSync());
    logits.dispose();
  };
  const train = () => {
    const { value, grads } = timed('forward + backward', () => tf.variableGrads(() => crossEntropy(model.forward(x), y), vars));
    timed('optimizer', () => opt.step(grads));
    timed('host read', () => value.dataSync());
    tf.dispose([value, grads]);
  };
  if (flags.infer) model.eval();
  const step = flags.infer ? infer : train;

  // A kernel may call another through the registry (KilnLinear runs _FusedMatMul): each kernel is
  // charged its own time only (a nested call's time is taken off its caller's), and a phase's
  // kernel time and calls count the outermost calls, so nothing is counted twice.
  const bk = tf.getBackend();
  const nested = [];
  for (const k of tf.getKernelsForBackend(bk)) {
    const f = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, bk);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        nested.push(0);
        const t0 = cpuMs();
        const out = f(args);
        const ms = cpuMs() - t0;
        const inner = nested.pop();
        const e = times.get(k.kernelName) ?? { ms: 0, calls: 0 };
        e.ms += ms - inner;
        e.calls++;
        times.set(k.kernelName, e);
        if (nested.length > 0) nested[nested.length - 1] += ms;
        else {
          inPhase[phase].ms += ms;
          inPhase[phase].calls++;
        }
        return out;
      },
    });
  }
  // Warm-up steps run through the timers too, so that the timed steps find them compiled.
  for (let i = 0; i < Number(flags.warmup); i++) step();
  times.clear();
  for (const p of Object.keys(phases)) {
    phases[p] = 0;
    inPhase[p] = { ms: 0, calls: 0 };
  }
  const tensors0 = tf.memory().numTensors;
  const t0 = cpuMs();
  const m0 = mainThreadMs();
  const w0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const total = (cpuMs() - t0) / steps;
  const mainThread = (mainThreadMs() - m0) / steps;
  const wall = (performance.now() - w0) / steps;
  const per = (v) => v / steps;
  const result = {
    model: name,
    batch: B,
    device: backend.describe().device,
    step_ms: total,
    main_thread_ms: mainThread,
    wall_ms: wall,
    phases: Object.fromEntries(Object.keys(phases).map((p) => [p, { ms: per(phases[p]), kernel_ms: per(inPhase[p].ms), calls: per(inPhase[p].calls) }])),
    kernels: Object.fromEntries([...times].sort((a, b) => b[1].ms - a[1].ms).map(([k, e]) => [k, { ms: per(e.ms), calls: per(e.calls) }])),
    tensors_growth: tf.memory().numTensors - tensors0,
    // Memory: the process's peak RSS, and how much of it is the WebAssembly heap (which never shrinks).
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    wasm_heap_mib: (tf.backend().wasm?.HEAPU8?.byteLength ?? 0) / 2 ** 20,
  };
  if (flags.child) {
    console.log('PROFILE ' + JSON.stringify(result));
    return;
  }
  const inKernels = Object.values(result.phases).reduce((a, p) => a + p.kernel_ms, 0);
  console.log(`${name} batch ${B} on ${result.device}: ${total.toFixed(1)} ms CPU per step (${mainThread.toFixed(1)} ms on the main thread, ${wall.toFixed(1)} ms wall), ${inKernels.toFixed(1)} ms in kernels; peak RSS ${result.peak_rss_mib.toFixed(0)} MiB, WASM heap ${result.wasm_heap_mib.toFixed(0)} MiB`);
  for (const [p, e] of Object.entries(result.phases)) {
    console.log(`  ${p.padEnd(20)} ${e.ms.toFixed(2).padStart(8)} ms, ${e.kernel_ms.toFixed(2).padStart(8)} ms in ${e.calls} kernel calls`);
  }
  for (const [k, e] of Object.entries(result.kernels).slice(0, 15)) {
    console.log(`  ${k.padEnd(28)} ${e.ms.toFixed(2).padStart(9)} ms  ${String(e.calls).padStart(5)} calls`);
  }
  machine.loadavg_end = loadNow();
  console.log(machineLine(machine));
}

/** Runs one child per ISA level and round, then prints medians side by side. */
async function compareIsas() {
  const isas = flags.isa.split(',');
  const rounds = Number(flags.rounds);
  const self = fileURLToPath(import.meta.url);
  const results = Object.fromEntries(isas.map((i) => [i, []]));
  const execCounts = {};
  const child = (isa, n, extraEnv = {}) => {
    const env = { ...process.env, ...extraEnv };
    const [level, layout] = isa.split(':');
    if (level !== 'native') Object.assign(env, { ONEDNN_MAX_CPU_ISA: level.toUpperCase(), DNNL_MAX_CPU_ISA: level.toUpperCase() });
    if (layout) env.KILN_DNNL_BLOCKED = layout === 'blocked' ? '1' : '0';
    const run = spawnSync(process.execPath, [self, name, batchArg, n, '--child', '--warmup', flags.warmup, ...(flags.infer ? ['--infer'] : [])], { env, encoding: 'utf8', maxBuffer: 1 << 28 });
    const line = run.stdout.split('\n').find((l) => l.startsWith('PROFILE '));
    if (run.status !== 0 || !line) throw new Error(`profile child (${isa}) failed: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return Object.assign(JSON.parse(line.slice(8)), { stdout: run.stdout });
  };
  const load0 = os.loadavg();
  for (let r = 0; r < rounds; r++) {
    for (const isa of r % 2 ? [...isas].reverse() : isas) {
      const res = child(isa, stepsArg);
      // oneDNN's primitive executions per step, from its verbose log of a separate short run (the
      // log's own writes would otherwise be timed): every step runs the same primitives.
      if (r === 0) {
        const countSteps = Math.min(3, steps);
        const log = child(isa, String(countSteps), { ONEDNN_VERBOSE: '1', DNNL_VERBOSE: '1' }).stdout;
        const byKind = {};
        for (const l of log.split('\n').filter((l) => /^(onednn|dnnl)_verbose,exec,/.test(l))) {
          const kind = l.split(',')[3];
          byKind[kind] = (byKind[kind] ?? 0) + 1;
        }
        // The warm-up steps run before the timed ones.
        execCounts[isa] = Object.fromEntries(Object.entries(byKind).map(([k, n]) => [k, n / (countSteps + Number(flags.warmup))]));
      }
      res.isa = isa;
      delete res.stdout;
      results[isa].push(res);
      process.stderr.write(`… ${isa} round ${r + 1}: ${res.step_ms.toFixed(1)} ms CPU/step, ${res.wall_ms.toFixed(1)} ms wall (${res.device})\n`);
    }
  }
  const load1 = os.loadavg();
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const med = (isa, get) => median(results[isa].map((r) => get(r) ?? 0));
  const rows = [];
  const row = (label, get, digits = 2) => rows.push([label, ...isas.map((i) => med(i, get).toFixed(digits))]);
  row('**step, CPU**', (r) => r.step_ms);
  row('step, main thread CPU', (r) => r.main_thread_ms);
  row('step, wall', (r) => r.wall_ms);
  for (const p of Object.keys(results[isas[0]][0].phases)) {
    row(`${p}`, (r) => r.phases[p].ms);
    row(`${p}: in kernels`, (r) => r.phases[p].kernel_ms);
    row(`${p}: outside kernels`, (r) => r.phases[p].ms - r.phases[p].kernel_ms);
    row(`${p}: kernel calls`, (r) => r.phases[p].calls, 0);
  }
  const kernels = Object.keys(results[isas[0]][0].kernels).slice(0, 14);
  for (const k of kernels) row(`\`${k}\` (${results[isas[0]][0].kernels[k].calls} calls)`, (r) => r.kernels[k]?.ms);
  row('peak RSS, MiB', (r) => r.peak_rss_mib, 0);
  row('of which WASM heap, MiB', (r) => r.wasm_heap_mib, 0);
  const kinds = [...new Set(isas.flatMap((i) => Object.keys(execCounts[i])))];
  for (const kind of kinds) rows.push([`oneDNN ${kind} executions`, ...isas.map((i) => (execCounts[i][kind] ?? 0).toFixed(1))]);
  const header = ['ms per step (median of ' + rounds + ' rounds)', ...isas.map((i) => `${i} (${results[i][0].device.match(/oneDNN [^ ]+ ([^ ]+)/)?.[1] ?? 'no oneDNN'})`)];
  console.log(`${name} ${flags.infer ? 'inference' : 'training'}, batch ${batchArg}, ${steps} steps per round, ${rounds} rounds; load ${load0.map((l) => l.toFixed(2)).join(' ')} → ${load1.map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} cores (${os.cpus()[0]?.model})`);
  console.log('| ' + header.join(' | ') + ' |');
  console.log('|' + header.map((_, i) => (i ? '---:' : '---')).join('|') + '|');
  for (const r of rows) console.log('| ' + r.join(' | ') + ' |');
  machine.loadavg_end = loadNow();
  console.log(machineLine(machine));
}
