/**
 * @kiln/backend-cuda — the `cuda` backend: TensorFlow's native GPU kernels through
 * `@tensorflow/tfjs-node-gpu`, an optional peer dependency loaded only when the backend is probed.
 *
 * - `cudaBackend()` — the plugin (priority 300, above every other backend under `auto`).
 * - Typed failures, all `BackendUnavailableError`s: `TfjsNodeGpuMissingError`,
 *   `TfjsNodeGpuIncompleteError`, `LibtensorflowLoadError`, `CudaVersionMismatchError`,
 *   `NoCudaDeviceError`, `TensorflowBackendConflictError`.
 * - `probeCudaSystem()` / `checkCudaSystem()` — what was read from the machine, and the verdict.
 */
export { cudaBackend, type CudaBackendOptions, type CudaBackendPlugin, type CudaProbeResult } from './cuda-backend.js';
export * from './errors.js';
export { probeCudaSystem, nodeSystemAccess, type SystemAccess, type CudaSystemReport, type GpuDevice, type LibraryFound } from './cuda-probe.js';
export { checkCudaSystem } from './check-cuda.js';
export { classifyLoadError, type Importer } from './load-tfjs-node-gpu.js';
export { TFJS_NODE_GPU } from './requirements.js';
