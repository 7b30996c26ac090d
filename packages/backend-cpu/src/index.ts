/**
 * @kiln/backend-cpu — CPU backends as Kiln plugins. Each factory's result is a plugin for a run
 * (`createTrainer({ plugins: [wasmBackend()] })` registers it under `BACKENDS`) and the backend itself.
 *
 * - `wasmBackend()` (`wasm`, the default): tfjs's WebAssembly backend plus Kiln's training kernels.
 * - `cpuBackend()` (`cpu`): tfjs's pure-JS kernels, the reference every other backend is tested against.
 * - `cpuNativeBackend()` (`cpu-native`): TensorFlow's C++ kernels through `@tensorflow/tfjs-node`, when installed.
 */
import type { Plugin } from '@kiln/core';
import { wasmBackend, type WasmBackendOptions } from './wasm-backend.js';
import { cpuBackend } from './cpu-backend.js';

export { wasmBackend, cpuBackend };
export type { WasmBackendOptions };
export { registerWasmTrainingKernels, type WasmKernelOptions } from './kernels/index.js';
export { loadDnnl, dnnlCallCounts, dnnlOffNotice, DNNL_ENABLE_COMMAND, type DnnlAddon, type DnnlStatus } from './kernels/dnnl.js';
export * from './native-backend.js';

/** Registers the portable CPU backends of this package (`wasm`, `cpu`) with a run's container. */
export function cpuBackends(options: { wasm?: WasmBackendOptions } = {}): Plugin {
  return (c) => {
    wasmBackend(options.wasm)(c);
    cpuBackend()(c);
  };
}
