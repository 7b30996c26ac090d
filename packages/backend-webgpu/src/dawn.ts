import type { GpuLike } from './gpu-types.js';

/** The `webgpu` npm package: Dawn's Node bindings. */
export interface DawnModule {
  /** Makes a `navigator.gpu` equivalent; `flags` are Dawn toggles such as `backend=vulkan`. */
  create(flags: string[]): GpuLike;
  /** WebGPU's global constants (`GPUBufferUsage`, `GPUMapMode`, …), which tfjs reads from globalThis. */
  globals: Record<string, unknown>;
}

export type DawnLoad = { ok: true; dawn: DawnModule } | { ok: false; reason: string; install: string };

/** The optional dependency that provides WebGPU in Node, at the version this package is tested with. */
export const DAWN_PACKAGE = 'webgpu';
/** The command that installs it. */
export const DAWN_INSTALL = 'npm install webgpu@0.6.2';

let cached: Promise<DawnLoad> | undefined;

/**
 * Imports the `webgpu` package on first use (and remembers the result). It is an optional
 * dependency: nothing here may fail at module load when it is absent, and browser bundlers must not
 * try to resolve it, hence the import through a variable. A custom `importer` (tests) is not cached.
 */
export function loadDawn(importer?: (specifier: string) => Promise<unknown>): Promise<DawnLoad> {
  if (importer) return load(importer);
  cached ??= load((s) => import(/* @vite-ignore */ s));
  return cached;
}

function load(importer: (specifier: string) => Promise<unknown>): Promise<DawnLoad> {
  return importer(DAWN_PACKAGE).then(
    (mod): DawnLoad => {
      const m = mod as Partial<DawnModule> & { default?: Partial<DawnModule> };
      const dawn = typeof m.create === 'function' ? m : m.default;
      if (!dawn || typeof dawn.create !== 'function') {
        return { ok: false, reason: `the '${DAWN_PACKAGE}' package has no create() export; this version is not supported`, install: DAWN_INSTALL };
      }
      return { ok: true, dawn: { create: dawn.create, globals: dawn.globals ?? {} } };
    },
    (e: unknown) => explainLoadFailure(e),
  );
}

/** Forgets a previous load attempt (tests; or after installing the package at runtime). */
export function resetDawnLoad(): void {
  cached = undefined;
}

/** Turns an import failure into the reason a user can act on. */
export function explainLoadFailure(e: unknown): DawnLoad {
  const err = e as { code?: string; message?: string };
  const message = (err?.message ?? String(e)).split('\n')[0];
  if ((err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') && message.includes(`'${DAWN_PACKAGE}'`)) {
    return { ok: false, reason: `the optional '${DAWN_PACKAGE}' package (Dawn, WebGPU for Node) is not installed`, install: DAWN_INSTALL };
  }
  if (/libvulkan/i.test(message)) {
    return { ok: false, reason: `the Vulkan loader is missing (${message})`, install: 'apt-get install libvulkan1 plus a Vulkan driver' };
  }
  // The native dawn.node binary exists per platform; a missing one or an incompatible libc lands here.
  return { ok: false, reason: `the '${DAWN_PACKAGE}' package failed to load its native binary: ${message}`, install: `${DAWN_INSTALL} (prebuilt for linux-x64, linux-arm64, darwin, win32)` };
}
