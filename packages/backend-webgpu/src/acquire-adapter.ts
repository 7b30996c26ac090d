import { nodeBuiltin } from '@kiln/core';
import { adapterInfo, classifyAdapter, type AdapterKind } from './adapter-kind.js';
import { loadDawn, type DawnModule } from './dawn.js';
import type { AdapterInfoLike, GpuAdapterLike, GpuLike } from './gpu-types.js';
import { findSwiftShader, inspectVulkan } from './vulkan-drivers.js';

/** Where the adapter came from and what it is. */
/** An adapter was found. */
export interface AcquiredAdapter {
  /** Found. */
  ok: true;
  /** The `navigator.gpu` (or Dawn's) object it came from. */
  gpu: GpuLike;
  /** The adapter. */
  adapter: GpuAdapterLike;
  /** What it says about itself. */
  info: AdapterInfoLike;
  /** Hardware or software (SwiftShader), which sets the backend's priority. */
  kind: AdapterKind;
  /** `navigator.gpu`, `dawn (system Vulkan drivers)`, `dawn (SwiftShader at …)`. */
  via: string;
  /** Dawn's WebGPU constants, to be made global in Node (tfjs reads `GPUBufferUsage` and friends). */
  globals?: Record<string, unknown>;
}

/** No adapter: why, and what would fix it. */
export interface NoAdapter {
  /** Not found. */
  ok: false;
  /** Why, in one sentence. */
  reason: string;
  /** The command or setting that would give one. */
  install?: string;
}

/** Options of {@link acquireAdapter}. */
export interface AcquireOptions {
  /** Dawn toggles passed to `create()` in Node, e.g. `['backend=vulkan']`. */
  dawnFlags?: string[];
  /**
   * In Node, when no driver the system offers yields an adapter, try SwiftShader's Vulkan driver
   * (from Debian's `chromium` package). Default true. Ignored when VK_ICD_FILENAMES is set.
   */
  softwareFallback?: boolean;
  /** SwiftShader driver manifest to try; defaults to the known chromium package locations. */
  swiftShaderIcd?: string;
  /** Module loader for `webgpu` (tests substitute a fake). */
  importer?: (specifier: string) => Promise<unknown>;
  /**
   * Whether a GPU device is exposed (default: `hasGpuDeviceNode()`). Without one, SwiftShader is
   * tried before the system's drivers, which can then only be software rasterisers.
   */
  gpuDevicePresent?: boolean;
}

type Proc = { versions?: { node?: string }; env: Record<string, string | undefined>; platform?: string };
const proc = (): Proc | undefined => (globalThis as { process?: Proc }).process;
export const isNode = (): boolean => typeof proc()?.versions?.node === 'string';

async function request(gpu: GpuLike): Promise<GpuAdapterLike | null> {
  try {
    return await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    return null;
  }
}

async function accept(gpu: GpuLike, adapter: GpuAdapterLike, via: string, globals?: Record<string, unknown>): Promise<AcquiredAdapter> {
  const info = await adapterInfo(adapter);
  return { ok: true, gpu, adapter, info, kind: classifyAdapter(info, adapter), via, globals };
}

/** In a browser (or any runtime with `navigator.gpu`): the adapter it offers. */
async function fromNavigator(gpu: GpuLike): Promise<AcquiredAdapter | NoAdapter> {
  const adapter = await request(gpu);
  if (!adapter) {
    return { ok: false, reason: 'navigator.gpu returned no adapter (WebGPU is blocked or no GPU driver is usable)', install: 'enable WebGPU in the browser (chrome://gpu); headless Chromium needs --enable-unsafe-webgpu' };
  }
  return accept(gpu, adapter, 'navigator.gpu');
}

/**
 * Finds the best WebGPU adapter here. Browsers: `navigator.gpu`. Node: Dawn on the system's Vulkan
 * drivers first (a real GPU), then, if that yields none or only a software one, SwiftShader. A
 * hardware adapter always wins; software is returned only when nothing better exists.
 */
export async function acquireAdapter(options: AcquireOptions = {}): Promise<AcquiredAdapter | NoAdapter> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (!isNode()) {
    if (!nav?.gpu) return { ok: false, reason: 'this browser has no WebGPU (navigator.gpu is undefined)', install: 'use a browser with WebGPU (Chrome/Edge 113+, Safari 26+), served over https or localhost' };
    return fromNavigator(nav.gpu);
  }
  // Dawn prints a warning with a C++ source location on stderr when it cannot load the Vulkan
  // loader; on Linux find out first, and explain instead of letting it try. (A custom importer may
  // bring its own Dawn build, so the check applies to the `webgpu` package only.)
  if (proc()?.platform === 'linux' && !options.importer) {
    const stack = inspectVulkan();
    if (!stack.loader) return explainNoAdapter(stack);
  }
  const loaded = await loadDawn(options.importer);
  if (!loaded.ok) return { ok: false, reason: loaded.reason, install: loaded.install };
  const dawn = loaded.dawn;
  const env = proc()!.env;
  const userChoseDrivers = Boolean(env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES);

  // Without a GPU device node the system's drivers can only offer software rasterisers (Mesa's
  // lavapipe), and probing them makes Dawn print warnings on stderr; try SwiftShader first then,
  // and the system drivers only as a last resort.
  const systemLast = !userChoseDrivers && !(options.gpuDevicePresent ?? hasGpuDeviceNode());
  const system = systemLast ? undefined : await tryDawn(dawn, options.dawnFlags ?? []);
  if (system?.kind === 'hardware') return { ...system, via: 'dawn (system Vulkan drivers)' };

  let software: AcquiredAdapter | undefined = system ? { ...system, via: userChoseDrivers ? `dawn (${env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES})` : 'dawn (system Vulkan drivers)' } : undefined;
  if (!software && !userChoseDrivers && options.softwareFallback !== false) {
    const icd = options.swiftShaderIcd ?? findSwiftShader();
    if (icd) {
      // The Vulkan loader reads VK_ICD_FILENAMES when Dawn creates its instance, so set it just
      // for that moment and restore it after.
      const before = env.VK_ICD_FILENAMES;
      env.VK_ICD_FILENAMES = icd;
      try {
        const sw = await tryDawn(dawn, options.dawnFlags ?? []);
        if (sw) software = { ...sw, via: `dawn (SwiftShader at ${icd})` };
      } finally {
        if (before === undefined) delete env.VK_ICD_FILENAMES;
        else env.VK_ICD_FILENAMES = before;
      }
    }
  }
  if (!software && systemLast) {
    const last = await tryDawn(dawn, options.dawnFlags ?? []);
    if (last) return { ...last, via: 'dawn (system Vulkan drivers)' };
  }
  if (software) return software;
  return explainNoAdapter();
}

/**
 * Whether this machine exposes a GPU to user space: a DRM render node or an NVIDIA device on
 * Linux. Other platforms have no such cheap test, so they always probe the system drivers first.
 */
export function hasGpuDeviceNode(): boolean {
  const p = proc();
  if (p?.platform !== 'linux') return true;
  const fs = nodeBuiltin<typeof import('node:fs')>('fs');
  if (!fs) return true;
  if (fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/nvidiactl')) return true;
  try {
    return fs.readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

async function tryDawn(dawn: DawnModule, flags: string[]): Promise<AcquiredAdapter | undefined> {
  // SwiftShader's Vulkan driver complains on stderr when XDG_RUNTIME_DIR is unset (it probes for a
  // Wayland display); compute needs no display, so point it at the temp directory while probing.
  const env = proc()!.env;
  const hadXdg = env.XDG_RUNTIME_DIR !== undefined;
  if (!hadXdg) env.XDG_RUNTIME_DIR = nodeBuiltin<typeof import('node:os')>('os')?.tmpdir() ?? '/tmp';
  try {
    let gpu: GpuLike;
    try {
      gpu = dawn.create(flags);
    } catch {
      return undefined;
    }
    const adapter = await request(gpu);
    return adapter ? await accept(gpu, adapter, 'dawn', dawn.globals) : undefined;
  } finally {
    if (!hadXdg) delete env.XDG_RUNTIME_DIR;
  }
}

/** Says why Dawn found nothing: no Vulkan loader, no driver, or drivers Dawn cannot use. */
export function explainNoAdapter(stack = inspectVulkan()): NoAdapter {
  const platform = proc()?.platform;
  if (platform !== 'linux') return { ok: false, reason: 'Dawn found no WebGPU adapter', install: 'install a GPU driver with Vulkan, Metal or Direct3D 12 support' };
  const swiftshader = 'apt-get install chromium, then VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json for the SwiftShader software driver';
  if (!stack.loader) return { ok: false, reason: 'the Vulkan loader (libvulkan.so.1) is not installed, so Dawn has no driver to use', install: `apt-get install libvulkan1 and your GPU's Vulkan driver, or ${swiftshader}` };
  if (stack.icds.length === 0) {
    const where = stack.fromEnvironment ? 'VK_ICD_FILENAMES names no existing driver manifest' : 'no Vulkan driver (ICD) is installed';
    return { ok: false, reason: `${where}, so Dawn found no adapter`, install: `install your GPU's Vulkan driver (e.g. the NVIDIA driver), or ${swiftshader}` };
  }
  return { ok: false, reason: `Dawn could use none of the Vulkan drivers installed (${stack.icds.join(', ')})`, install: `install a Vulkan 1.1 driver for your GPU, or ${swiftshader}` };
}
