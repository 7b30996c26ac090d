/**
 * Starts tfjs's multi-threaded WASM build (XNNPACK over pthreads) in Node.
 *
 * tfjs's own loader hands Emscripten two blob: URLs — the pthread worker script and the glue the
 * workers import — and Node's `worker_threads` refuses blob: URLs (ERR_WORKER_PATH), so stock
 * tfjs can only run one thread in Node. Here the same Emscripten factory is called with real file
 * paths instead: the worker script (shipped by tfjs only as a string export) is written once to the
 * temporary directory, and the workers import the glue straight from the installed package. The
 * result is wrapped the way tfjs's `init()` wraps it and handed to its `BackendWasm`, so every
 * kernel, Kiln's included, runs unchanged.
 */
import { nodeBuiltin, tf } from '@kiln/core';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm/dist/backend_wasm.js';
import threadedFactoryImport from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js';
// @ts-expect-error tfjs ships this CommonJS module, one exported string, without declarations.
import { wasmWorkerContents as workerScript } from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';

type EmscriptenModule = {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  tfjs?: Record<string, unknown>;
  PThread?: { runningWorkers: { unref(): void }[] };
};
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

// The string came out of a template literal, which turned the script's "\n" escapes into real
// line breaks inside string literals; put the escapes back (tfjs does the same for its blob).
const wasmWorkerContents = (workerScript as string).replace(/\n/g, '\\n');
const threadedFactory = ((threadedFactoryImport as unknown as { default?: Factory }).default ?? threadedFactoryImport) as unknown as Factory;

// Node built-ins, reached through core's `nodeBuiltin` so that browser bundles of this package
// never try to resolve them.
function builtin<T>(name: string): T {
  const mod = nodeBuiltin<T>(name);
  if (!mod) throw new Error(`node:${name} is not available in this runtime`);
  return mod as T;
}

/**
 * Path of a file holding the pthread worker script. Its name carries a hash of the contents, so
 * concurrent processes and different tfjs versions never overwrite each other with different
 * text; it is written to a private name and renamed into place, so no reader sees half a file.
 */
function workerScriptFile(): string {
  const fs = builtin<typeof import('node:fs')>('fs');
  const os = builtin<typeof import('node:os')>('os');
  const path = builtin<typeof import('node:path')>('path');
  const crypto = builtin<typeof import('node:crypto')>('crypto');
  const hash = crypto.createHash('sha256').update(wasmWorkerContents).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'kiln-wasm');
  // `.cjs`: the worker script uses `require`, whatever package.json lies above the directory.
  const file = path.join(dir, `tfjs-backend-wasm-threaded-simd.worker-${hash}.cjs`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${builtin<typeof import('node:process')>('process').pid}.tmp`;
    fs.writeFileSync(tmp, wasmWorkerContents);
    fs.renameSync(tmp, file);
  }
  return file;
}

/** The installed Emscripten glue file, which the workers evaluate to build their copy of the module. */
function glueFile(wasmDirectory: string): string {
  const path = builtin<typeof import('node:path')>('path');
  const fs = builtin<typeof import('node:fs')>('fs');
  // wasmDirectory is `<package>/dist/`; the glue lives in `<package>/wasm-out/`.
  const file = path.join(wasmDirectory, '..', 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  if (!fs.existsSync(file)) throw new Error(`the threaded WASM glue is missing: ${file}`);
  return file;
}

/**
 * Runs `start` while `os.cpus()` reports at least `n` logical cores.
 *
 * The tfjs WASM binary sizes its thread pool in a static initializer as
 * `min(requested, logical cores / 2)` — halving on the assumption of two hyper-threads per core —
 * and the glue answers "logical cores" with `os.cpus().length` in Node. On a 2-vCPU machine that
 * caps the pool at one thread whatever is asked. Reporting `2 × threads` cores while the module
 * starts (the initializer runs before the factory's promise settles) lets the requested count
 * through; the real function is restored afterwards.
 */
async function withReportedCores<T>(n: number, start: () => Promise<T>): Promise<T> {
  const os = builtin<{ cpus: () => unknown[] }>('os');
  const real = os.cpus;
  const cores = real();
  if (cores.length >= n) return start();
  os.cpus = () => Array.from({ length: n }, (_, i) => cores[i % Math.max(1, cores.length)]);
  try {
    return await start();
  } finally {
    os.cpus = real;
  }
}

/**
 * Instantiates the threaded SIMD build with `threads` XNNPACK threads and returns a `BackendWasm`
 * on it. `wasmDirectory` is the directory holding `tfjs-backend-wasm-threaded-simd.wasm`.
 */
export async function createThreadedNodeBackend(wasmDirectory: string, threads: number): Promise<tf.KernelBackend> {
  const path = builtin<typeof import('node:path')>('path');
  const config = {
    locateFile: (file: string, prefix: string) => {
      if (file.endsWith('.worker.js')) return workerScriptFile();
      if (file.endsWith('.wasm')) return path.join(wasmDirectory, 'tfjs-backend-wasm-threaded-simd.wasm');
      return prefix + file;
    },
    // A string is imported by the workers with `importScripts`, which the worker script maps to
    // reading and evaluating the file in Node.
    mainScriptUrlOrBlob: glueFile(wasmDirectory),
  };
  const module = await withReportedCores(2 * threads, () => threadedFactory(config));
  // The same bindings tfjs's init() attaches; BackendWasm and every kernel call through them.
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  const backend = new BackendWasm(module as never) as unknown as tf.KernelBackend;
  // Emscripten keeps Node alive while any pthread runs; XNNPACK's pool threads run (idle) for
  // the life of the module, so without this no script using the backend would ever exit.
  for (const worker of module.PThread?.runningWorkers ?? []) worker.unref();
  return backend;
}
