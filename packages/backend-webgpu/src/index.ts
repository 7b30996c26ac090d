/**
 * @kiln/backend-webgpu — TensorFlow.js's WebGPU backend as a Kiln plugin.
 *
 * In browsers it uses `navigator.gpu`; in Node, Dawn through the optional `webgpu` package, on the
 * system's Vulkan driver or, failing that, SwiftShader. `availability()` says why it cannot run.
 */
export { webgpuBackend, WEBGPU_HARDWARE_PRIORITY, WEBGPU_SOFTWARE_PRIORITY, type WebGpuBackendOptions } from './webgpu-backend.js';
export { acquireAdapter, explainNoAdapter, type AcquireOptions, type AcquiredAdapter, type NoAdapter } from './acquire-adapter.js';
export { classifyAdapter, describeAdapter, type AdapterKind } from './adapter-kind.js';
export { inspectVulkan, findSwiftShader, SWIFTSHADER_ICDS, type VulkanStack } from './vulkan-drivers.js';
export { DAWN_INSTALL } from './dawn.js';
export type { AdapterInfoLike, GpuAdapterLike, GpuLike } from './gpu-types.js';
