import { BackendUnavailableError, KilnError, activateTfjsBackend, backendPlugin, tf, type Availability, type BackendInfo, type BackendProvider } from '@kiln/core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { acquireAdapter, type AcquireOptions, type AcquiredAdapter, type NoAdapter } from './acquire-adapter.js';
import { describeAdapter } from './adapter-kind.js';
import type { GpuAdapterLike, GpuLike } from './gpu-types.js';

export interface WebGpuBackendOptions extends AcquireOptions {
  /** Priority under `--backend auto` on a real GPU. Default 250: above every CPU backend. */
  hardwarePriority?: number;
  /**
   * Priority on a software adapter (SwiftShader, llvmpipe). Default 50: below the WASM backend
   * (100), which is far faster than WebGPU emulated on the same CPU (about 140× for LeNet-5 here).
   */
  softwarePriority?: number;
}

/** Default ranks; see `BackendPlugin.priority` in @kiln/core for the whole ladder. */
export const WEBGPU_HARDWARE_PRIORITY = 250;
export const WEBGPU_SOFTWARE_PRIORITY = 50;

/** The device limits tfjs's kernels assume; asking for the adapter's maxima lets large convolutions fit. */
function deviceDescriptor(adapter: GpuAdapterLike): Record<string, unknown> {
  const features = ['timestamp-query'].filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  return {
    requiredFeatures: features,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  };
}

/**
 * tfjs reads GPU data synchronously (`dataSync`, `arraySync`) through an OffscreenCanvas, which
 * only browsers have. WebGPU itself has no synchronous readback, so in Node the only fix is an
 * asynchronous read; say so instead of failing with "OffscreenCanvas is not defined".
 */
class KilnWebGPUBackend extends WebGPUBackend {
  override readSync(dataId: object): ReturnType<WebGPUBackend['readSync']> {
    try {
      return super.readSync(dataId as never);
    } catch (e) {
      if (e instanceof ReferenceError && e.message.includes('OffscreenCanvas')) {
        throw new KilnError('E_SYNC_READ', 'WebGPU in Node cannot read a tensor synchronously (dataSync/arraySync/toHost); read it with `await tensor.data()`', { where: 'webgpu backend' });
      }
      throw e;
    }
  }
}

/**
 * tfjs's WebGPU backend reads `navigator.gpu` and the `GPUBufferUsage`-style constants from
 * globalThis. Browsers have them; in Node, install Dawn's.
 */
function installGlobals(gpu: GpuLike, globals: Record<string, unknown> = {}): void {
  const g = globalThis as Record<string, unknown> & { navigator?: { gpu?: GpuLike } };
  for (const [k, v] of Object.entries(globals)) if (g[k] === undefined) g[k] = v;
  if (g.navigator === undefined) {
    Object.defineProperty(g, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else if (!g.navigator.gpu) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
}

/**
 * TensorFlow.js's WebGPU backend as a Kiln plugin: `navigator.gpu` in browsers, Dawn (the optional
 * `webgpu` package) in Node. Its priority depends on the adapter found: a real GPU outranks every
 * CPU backend, a software one (SwiftShader) ranks below WASM.
 */
export function webgpuBackend(options: WebGpuBackendOptions = {}): BackendProvider {
  let probe: Promise<AcquiredAdapter | NoAdapter> | undefined;
  let chosen: AcquiredAdapter | undefined;
  const acquire = () => (probe ??= acquireAdapter(options).catch((e: unknown): NoAdapter => ({ ok: false, reason: e instanceof Error ? e.message : String(e) })));
  const priorityOf = (a: AcquiredAdapter) => (a.kind === 'hardware' ? (options.hardwarePriority ?? WEBGPU_HARDWARE_PRIORITY) : (options.softwarePriority ?? WEBGPU_SOFTWARE_PRIORITY));

  return backendPlugin({
    name: 'webgpu',
    priority: options.hardwarePriority ?? WEBGPU_HARDWARE_PRIORITY,
    async isAvailable() {
      return (await this.availability!()).available;
    },
    async availability(): Promise<Availability> {
      const a = await acquire();
      if (!a.ok) return { available: false, reason: a.reason, install: a.install };
      return { available: true, priority: priorityOf(a) };
    },
    async init() {
      const a = await acquire();
      if (!a.ok) throw new BackendUnavailableError('webgpu', a.reason, a.install);
      if (tf.findBackend('webgpu') == null) {
        installGlobals(a.gpu, a.globals);
        // tfjs registers its own 'webgpu' factory at import where navigator.gpu exists; replace it
        // with one that uses the adapter chosen above.
        if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
        const adapter = a.adapter;
        tf.registerBackend('webgpu', async () => {
          const device = await adapter.requestDevice(deviceDescriptor(adapter));
          return new KilnWebGPUBackend(device as never, a.info as never);
        });
      }
      await activateTfjsBackend('webgpu');
      chosen = a;
    },
    describe(): BackendInfo {
      if (!chosen) return { name: 'webgpu', tfjsBackend: 'webgpu', device: 'WebGPU (not initialised)' };
      return {
        name: 'webgpu',
        tfjsBackend: 'webgpu',
        device: `WebGPU: ${describeAdapter(chosen.info, chosen.kind)} via ${chosen.via}`,
        details: { adapterKind: chosen.kind, vendor: chosen.info.vendor ?? '', architecture: chosen.info.architecture ?? '', via: chosen.via },
      };
    },
  });
}
