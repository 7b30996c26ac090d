#!/usr/bin/env node
// Does loading images from disk keep up with training? LeNet-5 (or ResNet-18) trained by Kiln's
// Trainer (ClassificationModule, batch 64, shuffled), one epoch at a time, on the same images read
// three ways:
//
//   memory          the images decoded beforehand into an ArrayDataset;
//   folder cold     a freshly opened imageFolder of the JPEG files (DataLoader, `for await`,
//                   prefetch 2, default 256 MiB cache): every file decoded on the worker pool;
//   folder warm     the next epoch on that folder: every image from the decoded-image cache
//                   (the folder's decoded size, 8 bits per pixel, is far below the cache's bound);
//   folder nocache  a folder opened with `cacheBytes: 0`, which decodes every file every epoch.
//
// Each round runs, in one process and one after the other, memory · cold · memory · warm ·
// nocache · memory epochs, so that each folder epoch is compared with the memory epochs beside it
// (the mean of the one before and the one after): on a shared machine the load changes within
// seconds, and separate processes minutes apart measured it more than the loader. An epoch's
// throughput is its samples over the time from its start (onTrainEpochStart: the loader's first
// batch is awaited inside it) to its last step's end. Every round runs in a new process, after one
// warm-up epoch from memory. Opening a folder (listing, reading headers) is before and outside the
// timed epochs; its time is reported. Reported: each ratio (folder / memory) as the median over
// rounds, and per epoch the time per step and between steps (for a folder split into waiting for
// the batch's read and the rest), the first batch's wait, the main thread's CPU time per step
// (Linux) and its GC pauses. Before training it profiles decoding per image on one thread: reading the file, sharp
// (libvips) with imageFolder's options, sharp's header read, libjpeg-turbo as WebAssembly (the
// small-JPEG path), and an imageFolder pass with the pool and with `workers: 0`.
//
//   node tools/bench/image-folder.mjs [--model lenet5|resnet18] [--rounds 5] [--batches 45]
//                                     [--threads N] [--decode-workers N] [--prefetch N (default 2)]
//                                     [--steal-late on|off (default on)] [--skip-profile] [--out FILE]
//
// --steal-late off: the training thread waits for a late batch instead of decoding its remaining
// small JPEGs itself (imageFolder's `stealLate`); --decode-workers 0: everything on that thread.
//
// The JPEGs (the first batches × 64 Fashion-MNIST training images, 28×28 grey, quality 90) are
// written once to bench-results/.cache/image-folder-<count>/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { manualSeed } from '@kiln/core';
import { DataLoader, fashionMnist, imageFolder } from '@kiln/data';
import { loadDnnl, wasmBackend } from '@kiln/backend-cpu';
import { ClassificationModule, callback, createTrainer } from '@kiln/trainer';
import { kilnModel } from './models.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const BATCH = 64;
const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: 'lenet5' },
    rounds: { type: 'string', default: '5' },
    batches: { type: 'string', default: '45' },
    threads: { type: 'string' },
    'decode-workers': { type: 'string' },
    'steal-late': { type: 'string', default: 'on' },
    prefetch: { type: 'string', default: '2' },
    out: { type: 'string' },
    'skip-profile': { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});
const int = (name, v, min = 0) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * CPU time of the calling thread so far, in ms (Linux: /proc/thread-self/schedstat, nanoseconds on
 * the CPU); NaN elsewhere. Unlike the event loop's busy time, it does not count the time the thread
 * waits for a core, so it measures the main thread's own work on a loaded machine.
 */
function threadCpuMs() {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

if (flags.child) {
  await child(JSON.parse(flags.child));
  process.exit(0);
}

/** One round in this process: the epoch sequence above; prints `RESULT {...}`. */
async function child(cfg) {
  process.env.KILN_NUM_THREADS = String(cfg.threads);
  const backend = wasmBackend({ dnnl: cfg.backend === 'wasm+onednn' });
  await backend.init();
  manualSeed(0);
  const open = async (cacheBytes) => {
    const t0 = performance.now();
    const f = await imageFolder(cfg.folder, { size: [28, 28], channels: 1, cacheBytes, workers: cfg.decodeWorkers, stealLate: cfg.stealLate });
    return { f, openMs: performance.now() - t0 };
  };
  const first = await open(0);
  const memory = await first.f.train.materialize();
  first.f.close();
  const module = new ClassificationModule(kilnModel(cfg.model), { lr: 1e-3 });
  /**
   * One epoch of `ds`: samples/s, the time in and between steps, and the main thread's busy share.
   * For a folder, the time between steps is split in two: waiting for the batch's read (the dataset's
   * promise settling after the previous step ended) and the rest (the loader making the batch's
   * tensors, the trainer's own work between steps); each read's promise is timed where it settles.
   */
  const epoch = async (ds) => {
    let t0 = 0;
    let t1 = 0;
    let steps = 0;
    let inSteps = 0;
    let stepStart = 0;
    let waiting = 0;
    let firstBatch = 0;
    const waits = [];
    const ready = [];
    const read = typeof ds.gatherMany === 'function' ? 'gatherMany' : typeof ds.getMany === 'function' ? 'getMany' : undefined;
    if (read) {
      const own = ds[read];
      ds[read] = (indices, options) => {
        const b = ready.length;
        ready.push(Infinity);
        return own.call(ds, indices, options).then((r) => ((ready[b] = performance.now()), r));
      };
    }
    const timer = {
      onTrainEpochStart: () => void (t0 = performance.now()),
      onTrainBatchStart: () => {
        stepStart = performance.now();
        if (steps === 0) firstBatch = stepStart - t0;
        if (read) {
          const w = Math.max(0, Math.min(ready[steps], stepStart) - (steps === 0 ? t0 : t1));
          waiting += w;
          waits.push(Math.round(w * 10) / 10);
        }
      },
      onTrainBatchEnd: () => {
        t1 = performance.now();
        inSteps += t1 - stepStart;
        steps++;
      },
    };
    const trainer = createTrainer({ maxEpochs: 1, numSanityValSteps: 0, enableProgressBar: false, plugins: [callback(timer)] });
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = threadCpuMs();
    // The main thread's garbage-collection pauses during the epoch.
    const gc = [];
    const gcObserver = new PerformanceObserver((list) => gc.push(...list.getEntries().map((e) => e.duration)));
    gcObserver.observe({ entryTypes: ['gc'] });
    try {
      await trainer.fit(module, new DataLoader(ds, { batchSize: BATCH, shuffle: true, prefetch: cfg.prefetch }));
    } finally {
      if (read) delete ds[read];
      gcObserver.disconnect();
    }
    // Time in steps (batch start to end hooks) and between them (the first batch's wait included).
    const between = (t1 - t0 - inSteps) / steps;
    return {
      samples_per_sec: (steps * BATCH * 1000) / (t1 - t0),
      ms_per_step: inSteps / steps,
      ms_between_steps: between,
      // The first batch is awaited at the epoch's start, with nothing to overlap it.
      ms_first_batch: firstBatch,
      ...(read ? { ms_waiting_for_batch: waiting / steps, ms_other_between: between - waiting / steps, ms_waiting_per_step: waits } : {}),
      main_thread_busy: performance.eventLoopUtilization(elu0).utilization,
      main_thread_cpu_ms_per_step: (threadCpuMs() - cpu0) / steps,
      main_gc_ms: gc.reduce((a, b) => a + b, 0),
      main_gc_max_ms: Math.max(0, ...gc),
    };
  };
  await epoch(memory); // warm-up: JIT, kernels, allocator
  const cold = await open(undefined);
  const nocache = await open(0);
  const seq = {};
  seq.memory1 = await epoch(memory);
  seq.cold = await epoch(cold.f.train);
  seq.memory2 = await epoch(memory);
  seq.warm = await epoch(cold.f.train);
  seq.nocache = await epoch(nocache.f.train);
  seq.memory3 = await epoch(memory);
  const cache = cold.f.train.cacheStats();
  // Who decoded the images of the batched reads: the decoding threads, or the training thread taking over late batches.
  const decoded = { cold: cold.f.train.decodeStats(), nocache: nocache.f.train.decodeStats() };
  cold.f.close();
  nocache.f.close();
  const m = (a, b) => (seq[a].samples_per_sec + seq[b].samples_per_sec) / 2;
  const ratios = { cold: seq.cold.samples_per_sec / m('memory1', 'memory2'), warm: seq.warm.samples_per_sec / m('memory2', 'memory3'), nocache: seq.nocache.samples_per_sec / m('memory2', 'memory3') };
  console.log('RESULT ' + JSON.stringify({ epochs: seq, ratios, cache, decoded, open_ms: cold.openMs, peak_rss_mib: process.resourceUsage().maxRSS / 1024 }));
}

// ---------------------------------------------------------------- parent
const rounds = int('rounds', flags.rounds, 1);
const batches = int('batches', flags.batches, 2);
if (!['lenet5', 'resnet18'].includes(flags.model)) throw new Error(`--model must be lenet5 or resnet18, got '${flags.model}'`);
const threads = flags.threads === undefined ? os.availableParallelism() : int('threads', flags.threads, 1);
const decodeWorkers = flags['decode-workers'] === undefined ? undefined : int('decode-workers', flags['decode-workers']);
const count = batches * BATCH;

/** Writes the first `count` Fashion-MNIST training images as JPEGs in class folders (once). */
async function ensureFolder() {
  const dir = path.join(root, 'bench-results', '.cache', `image-folder-${count}`);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  const ds = await fashionMnist('train');
  for (let i = 0; i < count; i++) {
    const e = ds.get(i);
    const px = Buffer.from(Array.from(e.x, (v) => Math.round(v * 255)));
    const cls = path.join(tmp, String(e.y));
    mkdirSync(cls, { recursive: true });
    writeFileSync(path.join(cls, `${String(i).padStart(6, '0')}.jpg`), await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).jpeg({ quality: 90 }).toBuffer());
  }
  writeFileSync(path.join(tmp, '.complete'), '');
  renameSync(tmp, dir);
  return dir;
}
const folder = await ensureFolder();
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown').trim();
const load0 = os.loadavg();

// ---- decoding profile, per image, one thread
const files = readdirSync(folder)
  .filter((d) => !d.startsWith('.'))
  .flatMap((c) => readdirSync(path.join(folder, c)).map((f) => path.join(folder, c, f)));
const bytes = files.map((f) => readFileSync(f));
const req = createRequire(import.meta.url);
const mozjpeg = await (async () => {
  // The WebAssembly decoder @kiln/data uses for small plain JPEGs (packages/data/src/images/small-jpeg.ts).
  const wasm = await WebAssembly.compile(readFileSync(req.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
  const factory = (await import(pathToFileURL(req.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.js')).href)).default;
  return factory({ noInitialRun: true, print: () => undefined, printErr: () => undefined, instantiateWasm: (imports, done) => { const i = new WebAssembly.Instance(wasm, imports); done(i); return i.exports; } });
})();
const stages = {
  'read file': async (k) => readFileSync(files[k]),
  'sharp (libvips), imageFolder options': (k) =>
    sharp(bytes[k], { autoOrient: true, failOn: 'truncated', limitInputPixels: 50_000_000, sequentialRead: true }).flatten({ background: { r: 0, g: 0, b: 0 } }).toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer(),
  'sharp metadata() (the old probe)': (k) => sharp(bytes[k]).metadata(),
  'libjpeg-turbo as WebAssembly': async (k) => mozjpeg.decode(bytes[k], true),
};
async function timeStage(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < files.length; k++) await fn(k);
  const cpu = process.cpuUsage(c0);
  return { us_per_image: ((performance.now() - t0) * 1000) / files.length, cpu_us_per_image: (cpu.user + cpu.system) / files.length };
}
const profile = {};
if (!flags['skip-profile']) for (let rep = 0; rep < 2; rep++) for (const [name, fn] of Object.entries(stages)) profile[name] = await timeStage(fn); // second pass kept
/**
 * The whole folder in batches of 64, all requested at once, no cache, read as the DataLoader reads
 * it (gatherMany when the dataset has it, else getMany). The main thread's cost per image is given
 * both as its own CPU time and as event-loop busy time (which also counts waiting for a core).
 */
async function folderPass(workers) {
  const f = await imageFolder(folder, { size: [28, 28], channels: 1, cacheBytes: 0, workers });
  const idx = Array.from({ length: f.train.length }, (_, i) => i);
  const read = typeof f.train.gatherMany === 'function' ? (i) => f.train.gatherMany(i) : (i) => f.train.getMany(i);
  const e0 = performance.eventLoopUtilization();
  const c0 = process.cpuUsage();
  const m0 = threadCpuMs();
  const t0 = performance.now();
  const pending = [];
  for (let s = 0; s < idx.length; s += BATCH) pending.push(read(idx.slice(s, s + BATCH)));
  await Promise.all(pending);
  const wall = performance.now() - t0;
  const main = threadCpuMs() - m0;
  const cpu = process.cpuUsage(c0);
  const busy = performance.eventLoopUtilization(e0).active;
  f.close();
  return { images_per_sec: (idx.length / wall) * 1000, main_thread_cpu_us_per_image: (main * 1000) / idx.length, main_thread_us_per_image: (busy * 1000) / idx.length, process_cpu_us_per_image: (cpu.user + cpu.system) / idx.length };
}
const passes = [];
if (!flags['skip-profile']) for (const w of [0, decodeWorkers, 0, decodeWorkers]) passes.push({ workers: w ?? 'default', ...(await folderPass(w)) });
for (const [name, p] of Object.entries(profile)) process.stderr.write(`profile: ${name}: ${p.us_per_image.toFixed(1)} µs wall, ${p.cpu_us_per_image.toFixed(1)} µs CPU per image\n`);
for (const p of passes) process.stderr.write(`imageFolder pass, workers ${p.workers}: ${p.images_per_sec.toFixed(0)} images/s, main thread ${p.main_thread_cpu_us_per_image.toFixed(1)} µs CPU (${p.main_thread_us_per_image.toFixed(1)} µs busy)/image, process CPU ${p.process_cpu_us_per_image.toFixed(1)} µs/image\n`);

// ---- training
const backend = loadDnnl().loaded ? 'wasm+onednn' : 'wasm';
if (!['on', 'off'].includes(flags['steal-late'])) throw new Error(`--steal-late must be on or off, got '${flags['steal-late']}'`);
const base = { model: flags.model, backend, threads, folder, decodeWorkers, prefetch: int('prefetch', flags.prefetch), stealLate: flags['steal-late'] === 'on' };
const runs = [];
for (let r = 0; r < rounds; r++) {
  process.stderr.write(`… round ${r + 1}: ${flags.model}, epochs memory · cold · memory · warm · nocache · memory\n`);
  const res = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(base)], { encoding: 'utf8', cwd: root });
  const line = (res.stdout || '').split('\n').find((l) => l.startsWith('RESULT '));
  if (res.status !== 0 || !line) throw new Error(`round ${r + 1} failed: ${(res.stderr || '').trim().split('\n').slice(-5).join(' | ')}`);
  const run = { round: r, loadavg: os.loadavg()[0], ...JSON.parse(line.slice(7)) };
  runs.push(run);
  process.stderr.write(`  samples/s ${Object.entries(run.epochs).map(([k, v]) => `${k} ${v.samples_per_sec.toFixed(0)} (step ${v.ms_per_step.toFixed(1)} + ${v.ms_between_steps.toFixed(1)} ms${v.ms_waiting_for_batch === undefined ? '' : ` = ${v.ms_waiting_for_batch.toFixed(1)} waiting + ${v.ms_other_between.toFixed(1)} other`}; first batch ${v.ms_first_batch.toFixed(0)} ms; main thread ${v.main_thread_cpu_ms_per_step.toFixed(1)} ms CPU/step; GC ${v.main_gc_ms.toFixed(0)} ms, longest ${v.main_gc_max_ms.toFixed(0)})`).join(', ')}; ratios ${Object.entries(run.ratios).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}; cache ${run.cache.hits} hits ${run.cache.misses} misses ${(run.cache.bytes / 1024).toFixed(0)} KiB; decoded by the training thread: cold+warm ${run.decoded.cold.caller}/${run.decoded.cold.caller + run.decoded.cold.threads}, nocache ${run.decoded.nocache.caller}/${run.decoded.nocache.caller + run.decoded.nocache.threads}; load ${run.loadavg.toFixed(1)}\n`);
}
const load1 = os.loadavg();
const kinds = ['cold', 'warm', 'nocache'];
const ratios = Object.fromEntries(kinds.map((k) => [k, { median: median(runs.map((r) => r.ratios[k])), rounds: runs.map((r) => r.ratios[k]) }]));
const epochMedian = (k) => median(runs.map((r) => r.epochs[k].samples_per_sec));
const memoryMedian = median(runs.flatMap((r) => ['memory1', 'memory2', 'memory3'].map((k) => r.epochs[k].samples_per_sec)));

const f1 = (x) => x.toFixed(1);
console.log(`${flags.model}, batch ${BATCH}, ${count} images (one epoch = ${batches} steps), ${backend}, ${threads} compute threads, decode workers ${decodeWorkers ?? 'default'}, steal-late ${flags['steal-late']}, prefetch ${base.prefetch}, ${rounds} rounds`);
console.log(`CPU: ${cpuModel}, ${os.availableParallelism()} cores, Node ${process.version}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')}`);
/** Median over rounds of an epoch's per-step times: step + between (waiting for the batch + other), ms. */
const perStep = (ks) => {
  const m = (f) => median(runs.flatMap((r) => ks.map((k) => r.epochs[k][f])));
  const split = runs[0].epochs[ks[0]].ms_waiting_for_batch === undefined ? '' : ` (${f1(m('ms_waiting_for_batch'))} waiting + ${f1(m('ms_other_between'))} other)`;
  return `${f1(m('ms_per_step'))} + ${f1(m('ms_between_steps'))}${split} | ${f1(m('main_thread_cpu_ms_per_step'))} | ${f1(m('ms_first_batch'))}`;
};
console.log('| epoch | samples/s (median) | folder / memory (median; per round) | ms per step + between steps (medians) | main-thread CPU, ms per step | first batch, ms |');
console.log('|---|---|---|---|---|---|');
console.log(`| memory | ${f1(memoryMedian)} | | ${perStep(['memory1', 'memory2', 'memory3'])} |`);
for (const k of kinds) console.log(`| folder ${k} | ${f1(epochMedian(k))} | **${ratios[k].median.toFixed(3)}**; ${ratios[k].rounds.map((x) => x.toFixed(2)).join(', ')} | ${perStep([k])} |`);
console.log(`opening the folder (list + headers): ${f1(median(runs.map((r) => r.open_ms)))} ms; cache after cold + warm epochs: ${runs[0].cache.hits} hits, ${runs[0].cache.misses} misses, ${(runs[0].cache.bytes / 1024).toFixed(0)} KiB; peak RSS ${Math.max(...runs.map((r) => r.peak_rss_mib)).toFixed(0)} MiB`);
const share = (k) => median(runs.map((r) => r.decoded[k].caller / Math.max(1, r.decoded[k].caller + r.decoded[k].threads)));
console.log(`share of batched images decoded by the training thread (late batches taken over; median): cold ${(100 * share('cold')).toFixed(1)} %, nocache ${(100 * share('nocache')).toFixed(1)} %`);
console.log('decoding profile, per image (one thread, second pass):');
for (const [name, p] of Object.entries(profile)) console.log(`  ${name}: ${f1(p.cpu_us_per_image)} µs CPU (${f1(p.us_per_image)} µs wall)`);
for (const p of passes.slice(2)) console.log(`  imageFolder, workers ${p.workers}: ${p.images_per_sec.toFixed(0)} images/s, ${f1(p.main_thread_cpu_us_per_image)} µs main-thread CPU (${f1(p.main_thread_us_per_image)} µs busy), ${f1(p.process_cpu_us_per_image)} µs process CPU`);

const outFile = flags.out ?? path.join(root, 'bench-results', `image-folder-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  JSON.stringify({ model: flags.model, batch_size: BATCH, images: count, threads, decode_workers: decodeWorkers ?? null, steal_late: base.stealLate, prefetch: base.prefetch, backend, rounds, machine: { cpu: cpuModel, cores: os.availableParallelism(), node: process.version, loadavg_start: load0, loadavg_end: load1 }, ratios, memory_samples_per_sec: memoryMedian, profile, passes, runs }, null, 2) + '\n',
);
console.log(`results: ${path.relative(process.cwd(), outFile)}`);
