import { execFile } from 'node:child_process';
import { readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { TFJS_NODE_GPU } from './requirements.js';

/**
 * What the probe may read from the machine. The default reads the real one; tests pass a fake so
 * every branch (no driver, no GPU, wrong CUDA, wrong cuDNN) runs without the hardware.
 */
export interface SystemAccess {
  /** Runs a program; rejects with `code: 'ENOENT'` when it does not exist, or with its stderr. */
  run(command: string, args: readonly string[]): Promise<string>;
  /** File names in a directory; `[]` when it does not exist or cannot be read. */
  listDir(dir: string): Promise<string[]>;
  /** A text file's content, or `undefined` when it cannot be read. */
  readText(file: string): Promise<string | undefined>;
  /** Where a symlink finally points (the path itself when it is not a link). */
  resolveLink(file: string): Promise<string>;
  /** The environment (LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES, CUDA_HOME). */
  env: Readonly<Record<string, string | undefined>>;
}

/** Reads this machine through Node's fs and child_process. */
export function nodeSystemAccess(env: Readonly<Record<string, string | undefined>> = process.env): SystemAccess {
  return {
    run: (command, args) =>
      new Promise((resolve, reject) => {
        execFile(command, [...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err) reject(Object.assign(err, { stderr: String(stderr ?? '') }));
          else resolve(String(stdout));
        });
      }),
    listDir: (dir) => readdir(dir).catch(() => []),
    readText: (file) => readFile(file, 'utf8').catch(() => undefined),
    resolveLink: (file) => realpath(file).catch(() => file),
    env,
  };
}

/** One GPU as nvidia-smi reports it. */
export interface GpuDevice {
  /** The device's index, as `CUDA_VISIBLE_DEVICES` counts. */
  index: number;
  /** Its UUID (`GPU-…`). */
  uuid: string;
  /** Its model name. */
  name: string;
  /** Total device memory in MiB. */
  memoryMiB: number;
  /** The NVIDIA driver version. */
  driverVersion: string;
}

/** A shared library found on disk. */
export interface LibraryFound {
  /** Version read from the file the soname link resolves to, e.g. `11.2.152`; or from a header. */
  version: string;
  /** The file the version was read from. */
  source: string;
  /** Whether the dynamic loader finds it (LD_LIBRARY_PATH, the ldconfig cache, system folders). */
  onLoaderPath: boolean;
}

/** Everything the CUDA checks need, read once. */
export interface CudaSystemReport {
  /** GPUs visible to this process (nvidia-smi's list filtered by CUDA_VISIBLE_DEVICES). */
  gpus: GpuDevice[];
  /** When `gpus` is empty: why, in one sentence. */
  gpuProblem?: string;
  /** The CUDA runtime behind the soname TensorFlow opens (`libcudart.so.11.0`), if any. */
  cudaRuntime?: LibraryFound;
  /** cuDNN behind `libcudnn.so.8`, if any. */
  cudnn?: LibraryFound;
  /** Other versions seen (e.g. `libcudart.so.12.4.127`), to say what is there instead. */
  otherCudaRuntimes: string[];
  /** Other cuDNN versions seen, to say what is there instead. */
  otherCudnns: string[];
  /** Folders searched, loader path first. */
  searched: string[];
}

// Where the dynamic loader looks when LD_LIBRARY_PATH and the ldconfig cache do not say otherwise.
const SYSTEM_LIB_DIRS = ['/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib'];
// Where CUDA installers put libraries without necessarily adding them to the loader path.
const CUDA_HOME_DIRS = ['/usr/local/cuda/lib64'];
const CUDNN_HEADERS = ['/usr/include/cudnn_version.h', '/usr/include/x86_64-linux-gnu/cudnn_version_v8.h', '/usr/local/cuda/include/cudnn_version.h'];

/**
 * Reads the GPUs from `nvidia-smi` and finds the CUDA runtime and cuDNN the way TensorFlow's loader
 * would (by soname, along the loader path). It never loads a library itself: dlopen-ing CUDA from
 * Node would need a native addon, and nvidia-smi plus file names answer the question.
 */
export async function probeCudaSystem(sys: SystemAccess): Promise<CudaSystemReport> {
  const [gpuResult, loaderDirs] = await Promise.all([queryGpus(sys), loaderPath(sys)]);
  const home = sys.env.CUDA_HOME ?? sys.env.CUDA_PATH;
  const extraDirs = [...(home ? [path.join(home, 'lib64')] : []), ...CUDA_HOME_DIRS].filter((d) => !loaderDirs.includes(d));
  const [cudart, cudnn] = await Promise.all([
    findLibrary(sys, 'libcudart', TFJS_NODE_GPU.cuda.soname, loaderDirs, extraDirs),
    findLibrary(sys, 'libcudnn', TFJS_NODE_GPU.cudnn.soname, loaderDirs, extraDirs),
  ]);
  let cudnnFound = cudnn.found;
  // Some packages install libcudnn.so.8 as a plain file; the header then carries the full version.
  if (cudnnFound && (parts(cudnnFound.version) < 2)) cudnnFound = (await cudnnFromHeader(sys, cudnnFound)) ?? cudnnFound;
  return {
    ...gpuResult,
    cudaRuntime: cudart.found,
    cudnn: cudnnFound,
    otherCudaRuntimes: cudart.others,
    otherCudnns: cudnn.others,
    searched: [...loaderDirs, ...extraDirs],
  };
}

const parts = (v: string) => v.split('.').length;

async function queryGpus(sys: SystemAccess): Promise<{ gpus: GpuDevice[]; gpuProblem?: string }> {
  let out: string;
  try {
    out = await sys.run('nvidia-smi', ['--query-gpu=index,uuid,name,memory.total,driver_version', '--format=csv,noheader,nounits']);
  } catch (e) {
    const err = e as { code?: unknown; stderr?: string; message?: string };
    if (err.code === 'ENOENT') return { gpus: [], gpuProblem: 'nvidia-smi is not on PATH, so no NVIDIA driver is installed here' };
    const said = (err.stderr || err.message || String(e)).trim().split('\n')[0];
    return { gpus: [], gpuProblem: `nvidia-smi failed: ${said}` };
  }
  const all = out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map(parseGpuLine)
    .filter((g): g is GpuDevice => g !== undefined);
  if (all.length === 0) return { gpus: [], gpuProblem: 'nvidia-smi lists no GPUs' };
  const visible = filterVisible(all, sys.env.CUDA_VISIBLE_DEVICES);
  if (visible.length === 0) {
    return { gpus: [], gpuProblem: `CUDA_VISIBLE_DEVICES=${JSON.stringify(sys.env.CUDA_VISIBLE_DEVICES)} hides all ${all.length} GPU(s) nvidia-smi lists` };
  }
  return { gpus: visible };
}

/** `0, GPU-8f…, NVIDIA H100 80GB HBM3, 81559, 550.54.15` — the name may itself contain commas. */
export function parseGpuLine(line: string): GpuDevice | undefined {
  const f = line.split(',').map((s) => s.trim());
  if (f.length < 5) return undefined;
  const index = Number(f[0]);
  const memoryMiB = Number(f[f.length - 2]);
  if (!Number.isInteger(index) || !Number.isFinite(memoryMiB)) return undefined;
  return { index, uuid: f[1], name: f.slice(2, -2).join(', '), memoryMiB, driverVersion: f[f.length - 1] };
}

/**
 * CUDA_VISIBLE_DEVICES semantics: unset shows every device; empty or `-1` shows none; otherwise a
 * comma list of indices or UUID prefixes, and CUDA stops at the first entry that names no device.
 */
export function filterVisible(gpus: readonly GpuDevice[], spec: string | undefined): GpuDevice[] {
  if (spec === undefined) return [...gpus];
  const out: GpuDevice[] = [];
  for (const raw of spec.split(',').map((s) => s.trim())) {
    const g = /^\d+$/.test(raw) ? gpus.find((x) => x.index === Number(raw)) : raw ? gpus.find((x) => x.uuid.startsWith(raw)) : undefined;
    if (!g) break;
    if (!out.includes(g)) out.push(g);
  }
  return out;
}

/** LD_LIBRARY_PATH, then the folders of the ldconfig cache, then the system folders. */
async function loaderPath(sys: SystemAccess): Promise<string[]> {
  const dirs = (sys.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig']) {
    try {
      const out = await sys.run(ldconfig, ['-p']);
      for (const m of out.matchAll(/=>\s*(\S+)/g)) dirs.push(path.dirname(m[1]));
      break;
    } catch {
      // Not on PATH (non-root shells often lack /sbin); try the next spelling, then go without.
    }
  }
  dirs.push(...SYSTEM_LIB_DIRS);
  return [...new Set(dirs)];
}

async function findLibrary(
  sys: SystemAccess,
  stem: string,
  soname: string,
  loaderDirs: readonly string[],
  extraDirs: readonly string[],
): Promise<{ found?: LibraryFound; others: string[] }> {
  const pattern = new RegExp(`^${stem}\\.so\\.(\\d+(?:\\.\\d+)*)$`);
  const major = (v: string) => v.split('.')[0];
  const wanted = major(soname.slice(stem.length + 4));
  const others = new Set<string>();
  let found: LibraryFound | undefined;
  for (const [dirs, onLoaderPath] of [
    [loaderDirs, true],
    [extraDirs, false],
  ] as const) {
    for (const dir of dirs) {
      const names = (await sys.listDir(dir)).filter((n) => pattern.test(n));
      for (const name of names) {
        const file = path.join(dir, name);
        if (name === soname) {
          if (!found) {
            // The soname is a link to the fully versioned file (libcudart.so.11.0 -> libcudart.so.11.2.152).
            const target = await sys.resolveLink(file);
            const m = pattern.exec(path.basename(target));
            found = { version: m ? m[1] : soname.slice(stem.length + 4), source: target, onLoaderPath };
          }
        } else if (major(pattern.exec(name)![1]) !== wanted) {
          others.add(file);
        }
      }
    }
  }
  return { found, others: [...others] };
}

async function cudnnFromHeader(sys: SystemAccess, lib: LibraryFound): Promise<LibraryFound | undefined> {
  for (const header of CUDNN_HEADERS) {
    const text = await sys.readText(header);
    if (!text) continue;
    const num = (k: string) => new RegExp(`#define\\s+CUDNN_${k}\\s+(\\d+)`).exec(text)?.[1];
    const major = num('MAJOR');
    const minor = num('MINOR');
    if (major !== undefined && minor !== undefined) {
      return { version: `${major}.${minor}.${num('PATCHLEVEL') ?? 0}`, source: header, onLoaderPath: lib.onLoaderPath };
    }
  }
  return undefined;
}
