import { ACCELERATOR, AcceleratorConnector, NOTICES, createRunContainer, type BackendChoice, type Plugin } from '@kiln/core';
import { cpuBackend, cpuNativeBackend, wasmBackend } from '@kiln/backend-cpu';
import { cudaBackend } from '@kiln/backend-cuda';
import { webgpuBackend } from '@kiln/backend-webgpu';

/**
 * Every backend the CLI knows, as plugins. `cuda` and `cpu-native` load their optional tfjs-node
 * package only when probed (an explicit `--backend`, or `auto`), and say how to install it when absent.
 */
export function cliBackends(): Plugin[] {
  return [wasmBackend(), cpuBackend(), cpuNativeBackend(), cudaBackend(), webgpuBackend()];
}

/** A command's run: its container, and the backend started in it. */
export interface CliRun {
  /** Pass to `createTrainer({ container })`: the Trainer then runs on `backend`. */
  container: ReturnType<typeof createRunContainer>;
  /** The backend chosen and started (name, device, why). */
  backend: BackendChoice;
}

/**
 * The CLI's composition root for a command: the run's container holds the CLI's backends, the
 * `--backend` value as the run's accelerator and stderr for its notices; the backend is started
 * here, before the command loads data or builds a model, so their tensors live on it, and the
 * choice (`backend: NAME — DEVICE (why)`) is printed once, by the run.
 */
export async function startRun(backend: string | undefined, err: (line: string) => void, extra: Plugin[] = []): Promise<CliRun> {
  const container = createRunContainer([
    ...cliBackends(),
    ...extra,
    (c) => c.register(ACCELERATOR, { useValue: backend ?? 'auto' }),
    (c) => c.register(NOTICES, { useValue: err }),
  ]);
  return { container, backend: await container.resolve(AcceleratorConnector).select() };
}
