/**
 * The plugin on a real adapter (SwiftShader in CI): what it reports, where `--backend auto` ranks
 * it against the CPU backends, and that a hardware adapter outranks them all.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { core, cpuPkg, requireWebGpu, skipWhenOptedOut, webGpuOptOut, tf, webgpu } from './webgpu-test-env.js';

describe('webgpuBackend on this machine', () => {
  skipWhenOptedOut();
  let availability: import('@kiln/core').Availability;

  beforeAll(async () => {
    if (webGpuOptOut) return;
    ({ availability } = await requireWebGpu());
  }, 60_000);

  it('ranks a software adapter below WASM and a hardware one above every CPU backend', () => {
    expect(webgpu.WEBGPU_SOFTWARE_PRIORITY).toBeLessThan(cpuPkg.wasmBackend().priority);
    expect(webgpu.WEBGPU_HARDWARE_PRIORITY).toBeGreaterThan(200);
    // No GPU in CI: the adapter found is SwiftShader, so it must come in at the software rank.
    expect(availability).toEqual({ available: true, priority: webgpu.WEBGPU_SOFTWARE_PRIORITY });
  });

  it('--backend auto keeps WASM over SwiftShader, and picks SwiftShader over the pure-JS CPU backend', async () => {
    const withWasm = new core.BackendRegistry([cpuPkg.wasmBackend(), cpuPkg.cpuBackend(), webgpu.webgpuBackend()]);
    expect((await withWasm.use('auto')).name).toBe('wasm');
    const without = new core.BackendRegistry([cpuPkg.cpuBackend(), webgpu.webgpuBackend()]);
    const choice = await without.use('auto');
    expect(choice.name).toBe('webgpu');
    expect(choice.reason).toContain('priority 50');
    // It names the adapter it chose.
    expect(choice.info.device).toMatch(/^WebGPU: google swiftshader \(SwiftShader driver [\d.]+, software\) via dawn/);
    expect(choice.info.details?.adapterKind).toBe('software');
    expect(tf.getBackend()).toBe('webgpu');
  }, 60_000);

  it('computes on the adapter', async () => {
    await new core.BackendRegistry([webgpu.webgpuBackend()]).use('webgpu');
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.matMul(a, a);
    expect(Array.from(await b.data())).toEqual([7, 10, 15, 22]);
    // Node has no synchronous GPU readback; the error says what to do instead.
    const c = tf.add(a, 1);
    expect(() => c.dataSync()).toThrow(/await tensor\.data\(\)/);
    tf.dispose([a, b, c]);
  }, 60_000);
});

describe('adapter preference', () => {
  skipWhenOptedOut();
  it('a hardware adapter outranks WASM under --backend auto and is named in the choice', async () => {
    // A real SwiftShader adapter dressed up as an NVIDIA GPU: the ranking logic sees hardware,
    // and the device it hands to tfjs still works.
    const real = await webgpu.acquireAdapter();
    if (!real.ok) throw new Error(real.reason);
    const gpu = {
      async requestAdapter() {
        const a = real.adapter;
        return { info: { vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' }, features: a.features, limits: a.limits, requestDevice: (d: unknown) => a.requestDevice(d) };
      },
    };
    // In-process fake of the `webgpu` package: its first Dawn instance (the system drivers) offers the GPU.
    const plugin = webgpu.webgpuBackend({ importer: async () => ({ create: () => gpu, globals: real.globals }), gpuDevicePresent: true });
    const registry = new core.BackendRegistry([cpuPkg.wasmBackend(), cpuPkg.cpuBackend(), plugin]);
    expect(await plugin.availability!()).toEqual({ available: true, priority: 250 });
    const choice = await registry.use('auto');
    expect(choice.name).toBe('webgpu');
    expect(choice.info.device).toBe('WebGPU: nvidia hopper (NVIDIA H100, hardware) via dawn (system Vulkan drivers)');
  }, 60_000);
});
