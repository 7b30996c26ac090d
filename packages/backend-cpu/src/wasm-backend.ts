import { activateTfjsBackend, backendPlugin, BackendUnavailableError, nodeBuiltin, tf, type Availability, type BackendInfo, type BackendProvider } from '@kiln/core';
import { setThreadsCount, setWasmPaths, getThreadsCount, BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { init as initSingleThreaded } from '@tensorflow/tfjs-backend-wasm/dist/backend_wasm.js';
import { defaultWasmDirectory } from './wasm-files.js';
import { dnnlKernelsActive, registerWasmTrainingKernels } from './kernels/index.js';
import { dnnlOffNotice, loadDnnl } from './kernels/dnnl.js';
import { createThreadedNodeBackend } from './wasm-threaded-node.js';
import { chooseThreads, type ThreadChoice } from './thread-choice.js';

/** Options of `wasmBackend`. */
export interface WasmBackendOptions {
  /**
   * Directory (ending in `/`) or URL prefix holding `tfjs-backend-wasm*.wasm`. Defaults, in Node, to
   * the installed `@tensorflow/tfjs-backend-wasm` package.
   */
  wasmPaths?: string;
  /**
   * Compute threads: oneDNN's when its kernels are loaded (WASM then runs single-threaded), else
   * XNNPACK's. Defaults to `KILN_NUM_THREADS` when set, else (in Node) every core when oneDNN is
   * loaded (its threads wait passively, so the count need not follow the load), and without it the
   * cores not busy when the backend starts (cores − the smaller of the 1- and 5-minute load
   * averages, rounded, at least 1: XNNPACK's pool spins, and a spinning pool on cores other
   * processes use is several times slower than one thread; see `chooseThreads` and
   * docs/backends.md). With 1, the single-threaded SIMD build runs and no workers start. Results
   * do not depend on the thread count, up to float32 rounding where oneDNN splits a sum between
   * threads (filter gradients).
   */
  numThreads?: number;
  /**
   * Run 2-D convolutions (forward, input and filter gradients) through oneDNN when Kiln's native
   * addon is built (Node on Linux with Debian's `libdnnl-dev`; see docs/benchmarks.md). Default
   * true; `KILN_DNNL=0` also turns it off. oneDNN gets the `numThreads` threads.
   */
  dnnl?: boolean;
}

/** tfjs registers its WASM backend with this priority; the replacement keeps it. */
const TFJS_WASM_PRIORITY = 2;

/** The oneDNN-off line is printed once per process, however many backends start. */
let dnnlNoticeShown = false;

const isNode = () => typeof (globalThis as any).process?.versions?.node === 'string';

/** The default thread count of this host (see `chooseThreads`). */
function defaultThreads(dnnl: boolean): ThreadChoice {
  const os = nodeBuiltin<typeof import('node:os')>('os');
  const cores = Math.max(1, os?.availableParallelism?.() ?? os?.cpus?.().length ?? 1);
  return chooseThreads({ cores, loadavg: os?.loadavg?.(), dnnl });
}

/** Why the backend runs the thread count it does (for `describe()`). */
let threadReason = 'default';

/**
 * In Node, replaces tfjs's factory for 'wasm' by one that starts the threaded SIMD build from
 * files (see wasm-threaded-node.ts). Should the threaded build fail to start (no
 * SharedArrayBuffer, a locked-down temporary directory), the backend falls back to tfjs's
 * single-threaded SIMD build with a warning rather than failing.
 */
function useThreadedNodeBuild(dir: string, threads: number): void {
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      try {
        return await createThreadedNodeBackend(dir, threads);
      } catch (e) {
        console.warn(`kiln: the multi-threaded WASM build did not start (${(e as Error)?.message ?? e}); using one thread`);
        setThreadsCount(1);
        const { wasm } = await initSingleThreaded();
        return new BackendWasm(wasm);
      }
    },
    TFJS_WASM_PRIORITY,
  );
}

function envThreads(): number | undefined {
  const raw = (globalThis as any).process?.env?.KILN_NUM_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new BackendUnavailableError('wasm', `KILN_NUM_THREADS must be a positive integer, got '${raw}'`);
  return n;
}

/**
 * Kiln's default CPU backend: TensorFlow.js's WebAssembly backend (XNNPACK, SIMD) plus the training
 * kernels it lacks, registered by Kiln (`Conv2DBackpropFilter`, depthwise backprops, and a bridge to
 * the reference CPU kernels for the rest).
 */
export function wasmBackend(options: WasmBackendOptions = {}): BackendProvider {
  let initialised = false;
  return backendPlugin({
    name: 'wasm',
    priority: 100,
    async isAvailable() {
      return (await this.availability!()).available;
    },
    async availability(): Promise<Availability> {
      if (typeof WebAssembly !== 'object') return { available: false, reason: 'this runtime has no WebAssembly' };
      if (!options.wasmPaths && !isNode()) {
        return { available: false, reason: 'in a browser the .wasm files must be served', install: "wasmBackend({ wasmPaths: '/path/to/wasm/' })" };
      }
      return { available: true };
    },
    async init() {
      if (!initialised) {
        const dir = options.wasmPaths ?? defaultWasmDirectory();
        if (!dir) throw new BackendUnavailableError('wasm', 'cannot locate the .wasm binaries', "pass wasmBackend({ wasmPaths })");
        if (tf.findBackend('wasm') == null) {
          setWasmPaths(dir);
          if (isNode()) {
            // tfjs's own loader starts the threaded build's workers from a blob: URL, which Node
            // refuses (ERR_WORKER_PATH), and so it picks the single-threaded build in Node.
            tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
            // With oneDNN the heavy kernels run on its OpenMP pool, and a second, spinning XNNPACK
            // pool on the same cores only gets in its way (LeNet-5 at 2 threads: 6,100 samples/s
            // with one WASM thread, 4,850 with two; docs/benchmarks.md): the threads go to oneDNN.
            const dnnl = options.dnnl !== false ? loadDnnl() : undefined;
            const notice = dnnl && dnnlOffNotice(dnnl);
            if (notice && !dnnlNoticeShown) {
              dnnlNoticeShown = true;
              console.warn(notice);
            }
            const env = envThreads();
            const chosen: ThreadChoice =
              options.numThreads !== undefined
                ? { threads: options.numThreads, reason: 'numThreads option' }
                : env !== undefined
                  ? { threads: env, reason: 'KILN_NUM_THREADS' }
                  : defaultThreads(dnnl?.loaded === true);
            const n = chosen.threads;
            if (!Number.isInteger(n) || n < 1) throw new BackendUnavailableError('wasm', `numThreads must be a positive integer, got ${n}`);
            threadReason = chosen.reason;
            if (dnnl?.loaded) {
              dnnl.addon.setNumThreads(n);
            } else if (n > 1) {
              useThreadedNodeBuild(dir, n);
            }
          } else {
            const n = options.numThreads ?? envThreads();
            if (n !== undefined) setThreadsCount(n);
            threadReason = n === undefined ? "tfjs's default" : options.numThreads !== undefined ? 'numThreads option' : 'KILN_NUM_THREADS';
          }
        }
        registerWasmTrainingKernels({ dnnl: options.dnnl });
        initialised = true;
      }
      await activateTfjsBackend('wasm');
    },
    describe(): BackendInfo {
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      let threads = 1;
      try {
        threads = getThreadsCount();
      } catch {
        threads = 1;
      }
      const dnnl = dnnlKernelsActive() ? loadDnnl() : undefined;
      const info = dnnl?.loaded ? dnnl.addon.info() : undefined;
      const dnnlThreads = info?.maxThreads ?? 0;
      const plural = (k: number) => `${k} thread${k === 1 ? '' : 's'}`;
      const conv = info ? `; oneDNN ${info.version} ${info.cpuIsa} convolutions, ${plural(dnnlThreads)}` : '';
      return {
        name: 'wasm',
        tfjsBackend: 'wasm',
        device: `CPU (WebAssembly${simd ? ' SIMD' : ''}, ${plural(threads)}${conv})`,
        details: { simd, threads, dnnl: info ? `${info.version} (${info.cpuIsa})` : 'off', dnnlThreads, threadChoice: threadReason },
      };
    },
  });
}
