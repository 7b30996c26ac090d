import type { InjectionToken, DependencyContainer } from 'tsyringe';
import type { BackendPlugin } from './backend.js';

/**
 * A plugin registers providers into a run's container. Users compose plugins with plain function
 * calls (`wasmBackend()`, `earlyStopping({...})`) and never touch the container unless they want to.
 */
export type Plugin = (container: DependencyContainer) => void;

/** Every backend plugin a run may choose from (`@injectAll(BACKENDS)`). */
export const BACKENDS: InjectionToken<BackendPlugin> = Symbol('kiln.backends');
/** The backend a run asks for: `'auto'` (the highest-priority available one) or a backend's name. */
export const ACCELERATOR: InjectionToken<string> = Symbol('kiln.accelerator');
/**
 * Where a run writes its one-line notices (which backend it chose, and why). The CLI points it at
 * stderr; a web page at its status line. Unregistered, notices go to stderr in Node, `console.info` elsewhere.
 */
export const NOTICES: InjectionToken<(line: string) => void> = Symbol('kiln.notices');

/**
 * A backend that is also a plugin: `plugins: [wasmBackend()]` registers it under `BACKENDS`, and
 * it still answers `name`, `priority`, `availability()`, `init()` and `describe()` itself.
 */
export type BackendProvider<B extends BackendPlugin = BackendPlugin> = B & Plugin;

/**
 * Makes a backend plugin composable: returns a function that registers the backend under
 * `BACKENDS` and carries every member of `backend`, so it can be passed to `createTrainer`'s
 * `plugins` or used directly (`await wasmBackend().init()`). Backend packages return their
 * plugins through this; a user's own `BackendPlugin` object goes through it too.
 */
export function backendPlugin<B extends BackendPlugin>(backend: B): BackendProvider<B> {
  const provider = ((c: DependencyContainer) => {
    c.register(BACKENDS, { useValue: provider });
  }) as BackendProvider<B>;
  // The backend's members (methods and getters included, from its class too when it has one)
  // become the function's own; a function's built-in `name` is configurable, so the backend's
  // name replaces it.
  const copied = new Set<PropertyKey>();
  for (let o: object | null = backend; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Reflect.ownKeys(o)) {
      if (key === 'constructor' || copied.has(key)) continue;
      copied.add(key);
      Object.defineProperty(provider, key, Object.getOwnPropertyDescriptor(o, key)!);
    }
  }
  return provider;
}
