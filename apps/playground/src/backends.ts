import { BackendRegistry } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { webgpuBackend } from '@kiln/backend-webgpu';
import { webglBackend } from './webgl-backend.js';

/** The page's backends. The WASM binaries are served from `${base}wasm/` (copied there at build time). */
export function playgroundBackends(base: string): BackendRegistry {
  const wasmPaths = new URL(`${base}wasm/`, location.href).href;
  return new BackendRegistry([webgpuBackend(), wasmBackend({ wasmPaths }), webglBackend(), cpuBackend()]);
}
