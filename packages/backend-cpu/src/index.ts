/**
 * @kiln/backend-cpu — CPU backends as Kiln plugins.
 *
 * - `wasmBackend()` (`wasm`, the default): tfjs's WebAssembly backend plus Kiln's training kernels.
 * - `cpuBackend()` (`cpu`): tfjs's pure-JS kernels, the reference every other backend is tested against.
 */
import { backendPlugin, type Plugin } from '@kiln/core';
import { wasmBackend, type WasmBackendOptions } from './wasm-backend.js';
import { cpuBackend } from './cpu-backend.js';

export { wasmBackend, cpuBackend };
export type { WasmBackendOptions };
export { registerWasmTrainingKernels, type WasmKernelOptions } from './kernels/index.js';
export { loadDnnl, dnnlCallCounts, dnnlOffNotice, DNNL_ENABLE_COMMAND, type DnnlAddon, type DnnlStatus } from './kernels/dnnl.js';
export * from './native-backend.js';

/** Registers every CPU backend of this package with a run's container. */
export function cpuBackends(options: { wasm?: WasmBackendOptions } = {}): Plugin {
  return (c) => {
    backendPlugin(wasmBackend(options.wasm))(c);
    backendPlugin(cpuBackend())(c);
  };
}
