/**
 * Shared set-up for the tests that run real kernels. They load the built CommonJS bundles, so that
 * @kiln/core's engine, the WASM and CPU backends and this package's WebGPU backend are one tfjs
 * instance (the CPU package's ESM bundle cannot start WASM under vitest; see its kernels test).
 *
 * They need a WebGPU adapter: in CI, SwiftShader from Debian's `chromium` package, which the
 * backend finds by itself. Without one they fail with the reason, unless KILN_SKIP_WEBGPU=1 (which
 * CI refuses: see tools/testing/require-or-skip.ts).
 */
import { createRequire } from 'node:module';
import { beforeEach } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';

const require = createRequire(import.meta.url);
export const core = require('@kiln/core') as typeof import('@kiln/core');
export const { tf } = core;
export const webgpu = require('@kiln/backend-webgpu') as typeof import('../src/index.js');
export const cpuPkg = require('@kiln/backend-cpu') as typeof import('@kiln/backend-cpu');
export const layers = require('@kiln/layers') as typeof import('@kiln/layers');
export const zoo = require('@kiln/zoo') as typeof import('@kiln/zoo');
export const optim = require('@kiln/optim') as typeof import('@kiln/optim');
export const data = require('@kiln/data') as typeof import('@kiln/data');

/** Why the real-adapter tests skip here, or undefined: KILN_SKIP_WEBGPU=1 opts out of them. */
export const webGpuOptOut = process.env.KILN_SKIP_WEBGPU === '1' ? 'KILN_SKIP_WEBGPU=1 opts out of the real-adapter tests' : undefined;

/**
 * Call inside a describe of real-adapter tests: skips each of them under KILN_SKIP_WEBGPU=1, or fails
 * it under CI. (The describe's beforeAll must return early when webGpuOptOut is set.)
 */
export function skipWhenOptedOut(): void {
  beforeEach((ctx) => requireOrSkip(ctx, webGpuOptOut));
}

/** Initialises the WebGPU plugin, or throws with the reason it is unavailable. */
export async function requireWebGpu(plugin = webgpu.webgpuBackend()) {
  const a = await plugin.availability!();
  if (!a.available) throw new Error(`WebGPU unavailable: ${a.reason} (fix: ${a.install}); set KILN_SKIP_WEBGPU=1 to skip these tests`);
  return { plugin, availability: a };
}

export type HostTensor = { shape: number[]; values: Float32Array };

/** Reads a tensor asynchronously (WebGPU in Node has no synchronous download). */
export async function host(t: import('@kiln/core').Tensor): Promise<HostTensor> {
  return { shape: [...t.shape], values: (await t.data()) as Float32Array };
}

/** Largest |a-b| / max(1, |b|) over two equally shaped arrays. */
export function maxRelativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}
