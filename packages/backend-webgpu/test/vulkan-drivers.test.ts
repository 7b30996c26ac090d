import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { findSwiftShader, inspectVulkan } from '../src/vulkan-drivers.js';
import { explainNoAdapter } from '../src/acquire-adapter.js';

/** A fake file system holding exactly `files`. */
function fs(files: string[]) {
  return {
    existsSync: (p: string) => files.some((f) => f === p || f.startsWith(p + '/')),
    readdirSync: (d: string) => files.filter((f) => f.startsWith(d + '/')).map((f) => f.slice(d.length + 1)),
  };
}

describe('inspectVulkan', () => {
  it('finds the loader and the installed drivers', () => {
    const s = inspectVulkan({}, fs(['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/share/vulkan/icd.d/nvidia_icd.json', '/usr/share/vulkan/icd.d/README']));
    expect(s).toEqual({ loader: '/usr/lib/x86_64-linux-gnu/libvulkan.so.1', icds: ['/usr/share/vulkan/icd.d/nvidia_icd.json'], fromEnvironment: false });
  });

  it('follows VK_ICD_FILENAMES and drops manifests that do not exist', () => {
    const s = inspectVulkan({ VK_ICD_FILENAMES: '/a.json:/b.json' }, fs(['/b.json']));
    expect(s).toEqual({ loader: undefined, icds: ['/b.json'], fromEnvironment: true });
  });

  it('finds the loader through LD_LIBRARY_PATH and the linker cache', () => {
    expect(inspectVulkan({ LD_LIBRARY_PATH: '/opt/vk/lib:' }, fs(['/opt/vk/lib/libvulkan.so.1'])).loader).toBe('/opt/vk/lib/libvulkan.so.1');
    const cache = (text: string) => ({ ...fs([]), readFileSync: (p: string) => (p === '/etc/ld.so.cache' ? new TextEncoder().encode(text) : new Uint8Array()) });
    expect(inspectVulkan({}, cache('ld.so-1.7.0\0libvulkan.so.1\0/usr/local/lib/libvulkan.so.1')).loader).toBe('ld.so.cache');
    expect(inspectVulkan({}, cache('ld.so-1.7.0\0libz.so.1\0/usr/lib/libz.so.1')).loader).toBeUndefined();
  });

  it('finds SwiftShader where the chromium package installs it', () => {
    expect(findSwiftShader(undefined, fs(['/usr/lib/chromium/vk_swiftshader_icd.json']))).toBe('/usr/lib/chromium/vk_swiftshader_icd.json');
    expect(findSwiftShader(undefined, fs([]))).toBeUndefined();
  });
});

describe('explainNoAdapter', () => {
  it('distinguishes no loader, no driver, and unusable drivers', (ctx) => {
    requireOrSkip(ctx, process.platform !== 'linux' && `Linux only (its library paths), not ${process.platform}`);
    expect(explainNoAdapter({ icds: [], fromEnvironment: false }).reason).toMatch(/Vulkan loader \(libvulkan\.so\.1\) is not installed/);
    const noIcd = explainNoAdapter({ loader: '/usr/lib/libvulkan.so.1', icds: [], fromEnvironment: false });
    expect(noIcd.reason).toMatch(/no Vulkan driver \(ICD\) is installed/);
    expect(noIcd.install).toMatch(/VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/);
    expect(explainNoAdapter({ loader: '/usr/lib/libvulkan.so.1', icds: ['/x.json'], fromEnvironment: true }).reason).toMatch(/none of the Vulkan drivers installed \(\/x\.json\)/);
    expect(explainNoAdapter({ loader: '/usr/lib/libvulkan.so.1', icds: [], fromEnvironment: true }).reason).toMatch(/VK_ICD_FILENAMES names no existing driver/);
  });
});
