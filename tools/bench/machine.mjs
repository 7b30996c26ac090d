// What every benchmark result is recorded with: the CPU (model, the ISA extensions oneDNN picks its
// kernels by, the level oneDNN actually dispatches to and any cap put on it), thread settings, the
// load average, and the versions of Node, tfjs and PyTorch. A ratio measured on an AVX-512 machine
// says little about an AVX2 one (docs/benchmarks.md), so no result goes out without this.
//
//   import { machineInfo, machineLine, loadNow } from './machine.mjs';
//   const m = await machineInfo({ python: '/usr/bin/python3' });   // at start
//   ... measure ...
//   m.loadavg_end = loadNow();
//   console.log(machineLine(m));
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

const require = createRequire(import.meta.url);

/** The /proc/cpuinfo flags oneDNN (and PyTorch's oneDNN) choose kernels by. */
export const ISA_FLAGS = [
  'sse4_1', 'avx', 'avx2', 'fma', 'f16c',
  'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16',
  'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8',
];

/** Environment variables that change which kernels or how many threads run. */
const ENV_KEYS = ['ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA', 'KILN_NUM_THREADS', 'KILN_DNNL', 'OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'MKL_NUM_THREADS'];

/** The 1-, 5- and 15-minute load averages, rounded to 2 decimals. */
export function loadNow() {
  return os.loadavg().map((x) => +x.toFixed(2));
}

/** CPU model, vendor/family/model numbers and the ISA flags of ISA_FLAGS it has (Linux; elsewhere the model only). */
export function cpuInfo() {
  const model = os.cpus()[0]?.model?.trim() ?? 'unknown';
  if (!existsSync('/proc/cpuinfo')) return { model, flags: null };
  const text = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name) => text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  return {
    model: field('model name') ?? model,
    vendor: field('vendor_id') ?? null,
    family: field('cpu family') ?? null,
    model_number: field('model') ?? null,
    flags: ISA_FLAGS.filter((f) => flags.has(f)),
  };
}

/** oneDNN as Kiln's addon runs it (version, effective ISA after any cap, pool size), or why it is off. */
export async function kilnDnnl() {
  try {
    const { loadDnnl } = await import('@kiln/backend-cpu');
    const d = loadDnnl();
    if (!d.loaded) return { loaded: false, reason: d.reason };
    const info = d.addon.info();
    return { loaded: true, version: info.version, effective_isa: info.cpuIsa, max_threads: info.maxThreads };
  } catch (e) {
    return { loaded: false, reason: String(e?.message ?? e) };
  }
}

function packageVersion(name) {
  try {
    return require(`${name}/package.json`).version;
  } catch {
    return null;
  }
}

/** PyTorch's version, its oneDNN version and the CPU capability it dispatches to, or why it is missing. */
export function torchInfo(python = '/usr/bin/python3') {
  if (!existsSync(python)) return { available: false, reason: `${python} not found` };
  const code = [
    'import json, torch',
    'cfg = torch.__config__.show()',
    'dnnl = [l.split("oneDNN v")[-1].split()[0] for l in cfg.splitlines() if "oneDNN v" in l] or [l.split("MKL-DNN v")[-1].split()[0] for l in torch.__config__.parallel_info().splitlines() if "MKL-DNN v" in l]',
    'cap = [l.split(":")[-1].strip() for l in cfg.splitlines() if "CPU capability usage" in l]',
    'print(json.dumps({"version": torch.__version__, "onednn": dnnl[0] if dnnl else None, "cpu_capability": cap[0] if cap else None, "default_threads": torch.get_num_threads()}))',
  ].join('\n');
  const r = spawnSync(python, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) return { available: false, reason: `${python} cannot import torch (${(r.stderr || '').trim().split('\n').pop()})` };
  return { available: true, ...JSON.parse(r.stdout.trim().split('\n').pop()) };
}

/**
 * Everything a result is recorded with. `python` (default /usr/bin/python3) is asked for PyTorch's
 * versions; pass `python: null` for a case that does not run PyTorch.
 */
export async function machineInfo({ python = '/usr/bin/python3' } = {}) {
  const env = {};
  for (const k of ENV_KEYS) if (process.env[k] !== undefined) env[k] = process.env[k];
  return {
    cpu: cpuInfo(),
    cores: os.availableParallelism(),
    memory_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    env,
    onednn_isa_cap: process.env.ONEDNN_MAX_CPU_ISA ?? process.env.DNNL_MAX_CPU_ISA ?? null,
    kiln_onednn: await kilnDnnl(),
    node: process.version,
    tfjs: packageVersion('@tensorflow/tfjs-core'),
    tfjs_wasm: packageVersion('@tensorflow/tfjs-backend-wasm'),
    torch: python === null ? null : torchInfo(python),
    loadavg_start: loadNow(),
    loadavg_end: null,
  };
}

/** One markdown-friendly line: CPU, ISA flags, oneDNN, cores, versions and load averages. */
export function machineLine(m) {
  const isa = m.cpu.flags ? m.cpu.flags.join(' ') : 'flags unknown';
  const dnnl = m.kiln_onednn.loaded ? `Kiln oneDNN ${m.kiln_onednn.version} ${m.kiln_onednn.effective_isa}` : `Kiln oneDNN off (${m.kiln_onednn.reason})`;
  const cap = m.onednn_isa_cap ? ` (capped: ISA ${m.onednn_isa_cap})` : '';
  const torch = m.torch == null ? '' : m.torch.available ? `, PyTorch ${m.torch.version} (oneDNN ${m.torch.onednn ?? '?'}${m.torch.cpu_capability ? `, ATen ${m.torch.cpu_capability}` : ''})` : `, PyTorch: ${m.torch.reason}`;
  const env = Object.entries(m.env).map(([k, v]) => `${k}=${v}`).join(' ');
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '?');
  return (
    `machine: ${m.cpu.model}, ${m.cores} cores, ${m.memory_gib} GiB; ISA: ${isa}; ${dnnl}${cap}; ` +
    `Node ${m.node}, tfjs ${m.tfjs}${torch}${env ? `; env ${env}` : ''}; load ${load(m.loadavg_start)} → ${load(m.loadavg_end)}`
  );
}
