import * as tf from './tfjs-core.js';
import { BackendUnavailableError } from './errors.js';

/**
 * The packages that bring a backend, for the error a user gets when they installed none. Kiln's
 * core (and @kiln/data, layers, …) computes nothing by itself; tfjs says only "No backend found in
 * registry." at the first tensor op, far from the missing install.
 */
export const BACKEND_PACKAGES = ['@kiln/backend-cpu', '@kiln/backend-webgpu', '@kiln/backend-cuda'] as const;

/** The error raised at the first tensor operation when no backend has been registered. */
export function noBackendError(): BackendUnavailableError {
  return new BackendUnavailableError(
    'auto',
    `no backend is registered; Kiln's packages compute on a backend package (${BACKEND_PACKAGES.join(', ')})`,
    "npm install @kiln/backend-cpu, then give the run its backend (createTrainer({ plugins: [wasmBackend()] })) or start one first (await wasmBackend().init())",
  );
}

// tfjs's engine asks this method for its backends before the first op runs; with none registered
// it throws a bare Error. Replace that one error by Kiln's, which names the package to install.
// The flag keeps a second copy of this module (two bundles of core in one process) from wrapping twice.
const engine = tf.engine() as unknown as { registryFactory: Record<string, unknown>; getSortedBackends(): string[]; kilnNoBackendError?: true };
if (!engine.kilnNoBackendError) {
  const sorted = engine.getSortedBackends.bind(engine);
  engine.getSortedBackends = () => {
    if (Object.keys(engine.registryFactory).length === 0) throw noBackendError();
    return sorted();
  };
  engine.kilnNoBackendError = true;
}
