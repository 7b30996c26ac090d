import type { InjectionToken, DependencyContainer } from 'tsyringe';
import type { BackendPlugin } from './backend.js';
import type { Rng } from './rng.js';

/**
 * A plugin registers providers into a run's container. Users compose plugins with plain function
 * calls (`cpuBackend()`, `earlyStopping({...})`) and never touch the container unless they want to.
 */
export type Plugin = (container: DependencyContainer) => void;

/** Every backend plugin a run may choose from. */
export const BACKENDS: InjectionToken<BackendPlugin> = Symbol('kiln.backends');
/** The run's seeded generator. */
export const RNG: InjectionToken<Rng> = Symbol('kiln.rng');

/** Registers a backend plugin as a provider of `BACKENDS`. */
export function backendPlugin(plugin: BackendPlugin): Plugin {
  return (c) => {
    c.register(BACKENDS, { useValue: plugin });
  };
}
