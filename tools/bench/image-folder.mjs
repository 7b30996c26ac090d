#!/usr/bin/env node
// Does decoding images from disk keep up with training? LeNet-5 (or ResNet-18) trained by Kiln's Trainer for the
// same steps on the same images, once read as JPEG files through imageFolder + DataLoader (decoded
// on worker threads every step, no cache, `prefetch` batches ahead) and once as the same tensors
// already in memory (the folder decoded beforehand into an ArrayDataset). Each run is its own
// process (worker.mjs); rounds alternate which goes first. Reports the median step throughput of
// each and their ratio (1.00: loading costs nothing). First, without training, it measures decoding
// alone: images/s and main-thread time per image with decoding on worker threads and with
// `workers: 0` (sharp called from the main thread), the measurement behind the worker pool.
//
//   node tools/bench/image-folder.mjs [--model lenet5|resnet18] [--rounds 3] [--steps 40] [--warmup 5]
//                                     [--threads N] [--decode-workers N] [--out FILE]
//
// The JPEGs (Fashion-MNIST training images, 28×28 grey, quality 90) are written once to
// bench-results/.cache/image-folder-<count>/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { fashionMnist, imageFolder } from '@kiln/data';
import { loadDnnl } from '@kiln/backend-cpu';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: 'lenet5' },
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '5' },
    threads: { type: 'string' },
    'decode-workers': { type: 'string' },
    out: { type: 'string' },
  },
});
const int = (name, v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be an integer >= 0, got '${v}'`);
  return n;
};
const rounds = int('rounds', flags.rounds);
const steps = int('steps', flags.steps);
const warmup = int('warmup', flags.warmup);
const threads = flags.threads === undefined ? os.availableParallelism() : int('threads', flags.threads);
const decodeWorkers = flags['decode-workers'] === undefined ? undefined : int('decode-workers', flags['decode-workers']);
const BATCH = 64;
const count = (warmup + steps) * BATCH;

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

/** Decodes the whole folder `reps` times in batches of 64 (all requested at once) and times it. */
async function decodeOnly(workers, reps = 2) {
  const f = await imageFolder(folder, { size: [28, 28], channels: 1, cacheBytes: 0, workers });
  const idx = Array.from({ length: f.train.length }, (_, i) => i);
  const e0 = performance.eventLoopUtilization();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const batches = [];
    for (let s = 0; s < idx.length; s += BATCH) batches.push(f.train.getMany(idx.slice(s, s + BATCH)));
    await Promise.all(batches);
  }
  const n = reps * idx.length;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const busy = performance.eventLoopUtilization(e0).active;
  f.close();
  return { workers: workers ?? 'default', images_per_sec: (n / wall) * 1000, main_thread_us_per_image: (busy / n) * 1000, process_cpu_us_per_image: (cpu.user + cpu.system) / n };
}
const decoding = [];
for (const w of [0, decodeWorkers, 0, decodeWorkers]) decoding.push(await decodeOnly(w));
for (const d of decoding) process.stderr.write(`decode only, workers ${d.workers}: ${d.images_per_sec.toFixed(0)} images/s, main thread ${d.main_thread_us_per_image.toFixed(0)} µs/image, process CPU ${d.process_cpu_us_per_image.toFixed(0)} µs/image\n`);
const backend = loadDnnl().loaded ? 'wasm+onednn' : 'wasm';
if (!['lenet5', 'resnet18'].includes(flags.model)) throw new Error(`--model must be lenet5 or resnet18, got '${flags.model}'`);
const base = { framework: 'kiln', model: flags.model, backend, threads, steps, warmup, inferBatches: 1, imageFolder: folder, decodeWorkers };

function run(data) {
  process.stderr.write(`… ${flags.model} from ${data}\n`);
  const r = spawnSync(process.execPath, [path.join(here, 'worker.mjs'), JSON.stringify({ ...base, data })], { encoding: 'utf8', cwd: root });
  const line = (r.stdout || '').split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) throw new Error(`worker failed (${data}): ${(r.stderr || '').trim().split('\n').slice(-5).join(' | ')}`);
  const res = JSON.parse(line.slice(7));
  process.stderr.write(`  ${res.train_samples_per_sec.toFixed(1)} samples/s, main thread busy ${(100 * res.main_thread_busy).toFixed(0)}%, rss ${res.peak_rss_mib.toFixed(0)} MiB\n`);
  return res;
}

const load0 = os.loadavg();
const runs = [];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ['folder', 'memory'] : ['memory', 'folder'];
  for (const data of order) runs.push({ round: r, ...run(data) });
}
const load1 = os.loadavg();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const of = (data) => runs.filter((r) => r.data === data);
const summary = Object.fromEntries(['folder', 'memory'].map((d) => [d, { train_samples_per_sec: median(of(d).map((r) => r.train_samples_per_sec)), peak_rss_mib: Math.max(...of(d).map((r) => r.peak_rss_mib)) }]));
// Per round, so that a load change between rounds does not enter the ratio.
const roundRatios = Array.from({ length: rounds }, (_, r) => runs.find((x) => x.round === r && x.data === 'folder').train_samples_per_sec / runs.find((x) => x.round === r && x.data === 'memory').train_samples_per_sec);
const ratio = median(roundRatios);

console.log(`${flags.model}, batch ${BATCH}, ${steps} steps after ${warmup} warm-up, ${backend}, ${threads} compute threads, ${rounds} rounds`);
console.log(`| data | train samples/s | peak RSS MiB |`);
console.log(`|---|---|---|`);
console.log(`| JPEG folder (imageFolder, decoded every step) | ${summary.folder.train_samples_per_sec.toFixed(1)} | ${summary.folder.peak_rss_mib.toFixed(0)} |`);
console.log(`| same tensors in memory (ArrayDataset) | ${summary.memory.train_samples_per_sec.toFixed(1)} | ${summary.memory.peak_rss_mib.toFixed(0)} |`);
console.log(`folder / memory: ${ratio.toFixed(3)} (median of per-round ratios ${roundRatios.map((x) => x.toFixed(3)).join(', ')})`);
console.log(`decoding alone (second pass of each): ${decoding.slice(2).map((d) => `workers ${d.workers}: ${d.images_per_sec.toFixed(0)} images/s, ${d.main_thread_us_per_image.toFixed(0)} µs main-thread and ${d.process_cpu_us_per_image.toFixed(0)} µs CPU per image`).join('; ')}`);
console.log(`load average ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores`);

const outFile = flags.out ?? path.join(root, 'bench-results', `image-folder-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify({ model: flags.model, batch_size: BATCH, steps, warmup, threads, backend, rounds, machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version, loadavg_start: load0, loadavg_end: load1 }, summary, ratio, roundRatios, decoding, runs }, null, 2) + '\n');
console.log(`results: ${path.relative(process.cwd(), outFile)}`);
