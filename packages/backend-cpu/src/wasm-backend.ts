import { activateTfjsBackend, BackendUnavailableError, tf, type Availability, type BackendInfo, type BackendPlugin } from '@kiln/core';
import { setThreadsCount, setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { defaultWasmDirectory } from './wasm-files.js';
import { registerWasmTrainingKernels } from './kernels/index.js';

export interface WasmBackendOptions {
  /**
   * Directory (ending in `/`) or URL prefix holding `tfjs-backend-wasm*.wasm`. Defaults, in Node, to
   * the installed `@tensorflow/tfjs-backend-wasm` package.
   */
  wasmPaths?: string;
  /** XNNPACK threads; `KILN_NUM_THREADS` overrides. Only used where the threaded build can start. */
  numThreads?: number;
}

const isNode = () => typeof (globalThis as any).process?.versions?.node === 'string';

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
export function wasmBackend(options: WasmBackendOptions = {}): BackendPlugin {
  let initialised = false;
  return {
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
            // tfjs starts its threaded build's workers from a blob: URL, which Node refuses
            // (ERR_WORKER_PATH); use the single-threaded SIMD build in Node.
            tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
          } else {
            const n = options.numThreads ?? envThreads();
            if (n !== undefined) setThreadsCount(n);
          }
        }
        registerWasmTrainingKernels();
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
      return { name: 'wasm', tfjsBackend: 'wasm', device: `CPU (WebAssembly${simd ? ' SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'})`, details: { simd, threads } };
    },
  };
}
