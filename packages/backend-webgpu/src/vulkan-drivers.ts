import { nodeBuiltin } from '@kiln/core';

/** What a Linux machine has of the Vulkan stack Dawn runs on. */
export interface VulkanStack {
  /** Path of `libvulkan.so.1`, or undefined when no loader was found. */
  loader?: string;
  /** Installable client driver manifests the loader will read (or was told to read). */
  icds: string[];
  /** True when VK_ICD_FILENAMES / VK_DRIVER_FILES chose the drivers. */
  fromEnvironment: boolean;
}

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/lib64', '/lib'];
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/share/vulkan/icd.d'];

/** Where Debian's and Fedora's chromium packages put SwiftShader's Vulkan driver. */
export const SWIFTSHADER_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib64/chromium-browser/vk_swiftshader_icd.json', '/usr/lib/chromium-browser/vk_swiftshader_icd.json'];

type Fs = { existsSync(p: string): boolean; readdirSync(p: string): string[]; readFileSync?(p: string): Uint8Array };

/**
 * Where the dynamic linker would find `libvulkan.so.1`: the directories of LD_LIBRARY_PATH, then
 * the usual library directories, then the linker's cache (which covers ld.so.conf entries such as
 * /usr/local/lib). Returns the path found, or `ld.so.cache` when only the cache names it.
 */
function findLoader(env: Record<string, string | undefined>, fs: Fs): string | undefined {
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIB_DIRS];
  const direct = dirs.map((d) => `${d}/libvulkan.so.1`).find((p) => fs.existsSync(p));
  if (direct) return direct;
  try {
    const cache = fs.readFileSync?.('/etc/ld.so.cache');
    if (cache && new TextDecoder('latin1').decode(cache).includes('libvulkan.so.1')) return 'ld.so.cache';
  } catch {
    // No cache (musl, containers): the directory scan above is all there is.
  }
  return undefined;
}

function nodeFs(): Fs | undefined {
  return nodeBuiltin<Fs>('fs');
}

/** Inspects the Vulkan loader and drivers, so "no adapter" can be explained. Linux only; elsewhere returns nothing found. */
export function inspectVulkan(env: Record<string, string | undefined> = (globalThis as any).process?.env ?? {}, fs: Fs | undefined = nodeFs()): VulkanStack {
  if (!fs) return { icds: [], fromEnvironment: false };
  const loader = findLoader(env, fs);
  const chosen = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (chosen) return { loader, icds: chosen.split(':').filter((p) => p && fs.existsSync(p)), fromEnvironment: true };
  const icds: string[] = [];
  for (const dir of ICD_DIRS) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.json')) icds.push(`${dir}/${f}`);
  }
  return { loader, icds, fromEnvironment: false };
}

/** The first SwiftShader driver manifest on this machine, if any. */
export function findSwiftShader(candidates: string[] = SWIFTSHADER_ICDS, fs: Fs | undefined = nodeFs()): string | undefined {
  return fs ? candidates.find((p) => fs.existsSync(p)) : undefined;
}
