import type { AdapterInfoLike, GpuAdapterLike } from './gpu-types.js';

/** Whether an adapter is a real GPU or a CPU rasteriser posing as one. */
export type AdapterKind = 'hardware' | 'software';

// Software Vulkan/D3D implementations: Google's SwiftShader, Mesa's llvmpipe/lavapipe, Microsoft WARP.
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/i;

/** Reads an adapter's info whichever way this WebGPU implementation exposes it. */
export async function adapterInfo(adapter: GpuAdapterLike): Promise<AdapterInfoLike> {
  if (adapter.info) return adapter.info;
  if (adapter.requestAdapterInfo) return adapter.requestAdapterInfo();
  return {};
}

/**
 * Classifies an adapter. The spec's `isFallbackAdapter` flag is authoritative where set; otherwise
 * the vendor, architecture and description strings name the known software implementations.
 */
export function classifyAdapter(info: AdapterInfoLike, adapter?: Pick<GpuAdapterLike, 'isFallbackAdapter'>): AdapterKind {
  if (info.isFallbackAdapter === true || adapter?.isFallbackAdapter === true) return 'software';
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  return SOFTWARE.test(text) ? 'software' : 'hardware';
}

/** One line naming the adapter for logs: "google swiftshader (SwiftShader driver 5.0.0, software)". */
export function describeAdapter(info: AdapterInfoLike, kind: AdapterKind): string {
  const name = [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const detail = [info.description, kind].filter(Boolean).join(', ');
  return `${name} (${detail})`;
}
