/**
 * Adapter search order in Node, against a fake `webgpu` package: system drivers first, SwiftShader
 * only when they offer nothing, and a reason when neither works.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireAdapter } from '../src/acquire-adapter.js';
import type { AdapterInfoLike, GpuAdapterLike } from '../src/gpu-types.js';

const ICD = '/opt/fake/vk_swiftshader_icd.json';

function adapter(info: AdapterInfoLike): GpuAdapterLike {
  return { info, features: new Set<string>(), limits: {}, requestDevice: async () => ({ features: new Set<string>(), destroy() {} }) };
}

/**
 * A fake Dawn whose adapters depend on VK_ICD_FILENAMES at create() time, as the real Vulkan loader's
 * do. `system` is what the default drivers give; `swiftshader` what the SwiftShader manifest gives.
 */
function fakeDawn(system: GpuAdapterLike | null, swiftshader: GpuAdapterLike | null) {
  const seen: (string | undefined)[] = [];
  const importer = async () => ({
    globals: { GPUBufferUsage: {} },
    create: () => {
      const icd = process.env.VK_ICD_FILENAMES;
      seen.push(icd);
      return { requestAdapter: async () => (icd === ICD ? swiftshader : icd === undefined ? system : null) };
    },
  });
  return { importer, seen };
}

const nvidia = adapter({ vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA RTX A6000' });
const swift = adapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' });
const lavapipe = adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15)' });

describe('acquireAdapter (Node)', () => {
  // CI may export VK_ICD_FILENAMES for SwiftShader; these cases set it themselves.
  const saved = process.env.VK_ICD_FILENAMES;
  beforeEach(() => {
    delete process.env.VK_ICD_FILENAMES;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
    else process.env.VK_ICD_FILENAMES = saved;
  });

  it('takes a hardware adapter from the system drivers and never tries SwiftShader', async () => {
    const { importer, seen } = fakeDawn(nvidia, swift);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, gpuDevicePresent: true });
    expect(r.ok && r.kind).toBe('hardware');
    expect(r.ok && r.via).toBe('dawn (system Vulkan drivers)');
    expect(seen).toEqual([undefined]);
  });

  it('falls back to SwiftShader when the system offers no adapter, and restores VK_ICD_FILENAMES', async () => {
    const { importer, seen } = fakeDawn(null, swift);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, gpuDevicePresent: true });
    expect(r.ok && r.kind).toBe('software');
    expect(r.ok && r.via).toBe(`dawn (SwiftShader at ${ICD})`);
    expect(seen).toEqual([undefined, ICD]);
    expect(process.env.VK_ICD_FILENAMES).toBeUndefined();
  });

  it('without a GPU device node, tries SwiftShader before the (software-only) system drivers', async () => {
    const { importer, seen } = fakeDawn(lavapipe, swift);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, gpuDevicePresent: false });
    expect(r.ok && r.via).toBe(`dawn (SwiftShader at ${ICD})`);
    expect(seen).toEqual([ICD]);
  });

  it('without a GPU device node and without SwiftShader, still falls back to the system drivers', async () => {
    const { importer, seen } = fakeDawn(lavapipe, null);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, gpuDevicePresent: false });
    expect(r.ok && r.kind).toBe('software');
    expect(r.ok && r.via).toBe('dawn (system Vulkan drivers)');
    expect(seen).toEqual([ICD, undefined]);
  });

  it('keeps a software adapter the system offers without searching further', async () => {
    const { importer, seen } = fakeDawn(lavapipe, swift);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, gpuDevicePresent: true });
    expect(r.ok && r.kind).toBe('software');
    expect(seen).toEqual([undefined]);
  });

  it('does not fall back when told not to, and then explains why there is no adapter', async () => {
    const { importer } = fakeDawn(null, swift);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, softwareFallback: false, gpuDevicePresent: true });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toMatch(/Vulkan|adapter/);
      expect(r.install).toBeTruthy();
    }
  });

  it('respects drivers the user chose with VK_ICD_FILENAMES', async () => {
    process.env.VK_ICD_FILENAMES = '/nonexistent/icd.json';
    const { importer, seen } = fakeDawn(nvidia, swift);
    const r = await acquireAdapter({ importer, swiftShaderIcd: ICD, gpuDevicePresent: true });
    expect(r.ok).toBe(false);
    expect(seen).toEqual(['/nonexistent/icd.json']);
    if (!r.ok) expect(r.reason).toMatch(/VK_ICD_FILENAMES names no existing driver manifest|Dawn found no|Vulkan loader \(libvulkan.so.1\) is not installed/);
  });

  it('reports a missing webgpu package', async () => {
    const importer = async () => {
      throw Object.assign(new Error("Cannot find package 'webgpu' imported from /x.js"), { code: 'ERR_MODULE_NOT_FOUND' });
    };
    const r = await acquireAdapter({ importer, gpuDevicePresent: true });
    expect(r).toEqual({ ok: false, reason: expect.stringContaining("'webgpu' package"), install: 'npm install webgpu@0.6.2' });
  });
});
