import { BackendRegistry, type BackendPlugin } from '@kiln/core';
import { cpuBackend, cpuNativeBackend, wasmBackend } from '@kiln/backend-cpu';
import { cudaBackend } from '@kiln/backend-cuda';
import { webgpuBackend } from '@kiln/backend-webgpu';

/**
 * Every backend the CLI knows, as plugins. `cuda` and `cpu-native` load their optional tfjs-node
 * package only when probed (an explicit `--backend`, or `auto`), and say how to install it when absent.
 */
export function cliBackends(extra: BackendPlugin[] = []): BackendRegistry {
  return new BackendRegistry([wasmBackend(), cpuBackend(), cpuNativeBackend(), cudaBackend(), webgpuBackend(), ...extra]);
}
