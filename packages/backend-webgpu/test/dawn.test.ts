import { afterEach, describe, expect, it } from 'vitest';
import { DAWN_INSTALL, explainLoadFailure, loadDawn, resetDawnLoad } from '../src/dawn.js';

afterEach(() => resetDawnLoad());

/** The error Node raises for an absent package, reproduced by importing one that cannot exist. */
async function missingPackageError(): Promise<Error & { code?: string }> {
  try {
    await import('kiln-package-that-does-not-exist-' + 'x');
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('import unexpectedly succeeded');
}

describe('loadDawn', () => {
  it('loads the installed webgpu package and exposes create() and the WebGPU constants', async () => {
    const r = await loadDawn();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(typeof r.dawn.create).toBe('function');
    expect(r.dawn.globals).toHaveProperty('GPUBufferUsage');
  });

  it('says the optional package is missing, with the install command', async () => {
    const real = await missingPackageError();
    const r = await loadDawn(async () => {
      throw Object.assign(new Error(real.message.replace(/kiln-package-that-does-not-exist-x/g, 'webgpu')), { code: real.code });
    });
    expect(r).toEqual({ ok: false, reason: expect.stringContaining("optional 'webgpu' package"), install: DAWN_INSTALL });
  });

  it('reports a Vulkan loader that cannot be found', () => {
    const r = explainLoadFailure(new Error('libvulkan.so.1: cannot open shared object file: No such file or directory'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/Vulkan loader is missing/);
  });

  it('reports a native binary that fails to load', () => {
    const r = explainLoadFailure(new Error("/x/dawn.node: version `GLIBC_2.38' not found"));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/failed to load its native binary: .*GLIBC_2\.38/);
  });

  it('rejects a module without create()', async () => {
    const r = await loadDawn(async () => ({ globals: {} }));
    expect(r.ok).toBe(false);
  });
});
