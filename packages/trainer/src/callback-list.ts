import type { Callback } from './callback.js';

/**
 * The only place hooks are dispatched: each callback in registration order, then the module's hook
 * of the same name (Lightning's order: callbacks before the LightningModule).
 */
export class CallbackList {
  constructor(
    /** The callbacks, in the order their hooks fire. */
    readonly callbacks: Callback[],
  ) {}

  /** Calls `hook` on every callback, then the module's hook of the same name (without the trainer and module arguments). */
  async call<K extends keyof Callback>(hook: K, module: object, ...args: unknown[]): Promise<void> {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as unknown as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn === 'function') await fn.apply(cb, args);
    }
    const own = (module as Record<string, unknown>)[hook];
    if (typeof own === 'function') await (own as (...a: unknown[]) => unknown).apply(module, args.slice(2));
  }

  /** Synchronous dispatch for hooks that run inside the gradient tape. */
  callSync<K extends keyof Callback>(hook: K, module: object, ...args: unknown[]): void {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as unknown as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn === 'function') fn.apply(cb, args);
    }
    const own = (module as Record<string, unknown>)[hook];
    if (typeof own === 'function') (own as (...a: unknown[]) => unknown).apply(module, args.slice(2));
  }

  /** State of every callback that has some, keyed by its `stateKey` (default: class name). */
  stateDict(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const cb of this.callbacks) if (cb.stateDict) out[keyOf(cb)] = cb.stateDict();
    return out;
  }

  /** Gives each callback its state from a checkpoint, by `stateKey`. */
  loadStateDict(states: Record<string, Record<string, unknown>>): void {
    for (const cb of this.callbacks) {
      const s = states[keyOf(cb)];
      if (s && cb.loadStateDict) cb.loadStateDict(s);
    }
  }
}

/** The key a callback's state is saved under: its `stateKey`, or its class name. */
export function keyOf(cb: Callback): string {
  return cb.stateKey ?? cb.constructor.name;
}
