import { BackendRegistry, type BackendPlugin } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';

/** Every backend the CLI knows, as plugins; optional ones are added by the packages that provide them. */
export function cliBackends(extra: BackendPlugin[] = []): BackendRegistry {
  return new BackendRegistry([wasmBackend(), cpuBackend(), ...extra]);
}
