import { tf } from '@kiln/core';
import type { Callback } from './callback.js';

/**
 * The only place hooks are dispatched: each callback in registration order, then the module's hook
 * of the same name (Lightning's order: callbacks before the LightningModule).
 */
export class CallbackList {
  constructor(readonly callbacks: Callback[]) {}

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

  /** Tensors of every callback that has some: `{ [stateKey]: { [name]: tensor } }` (still owned by the callbacks). */
  stateTensors(): Record<string, Record<string, tf.Tensor>> {
    const out: Record<string, Record<string, tf.Tensor>> = {};
    for (const cb of this.callbacks) {
      const t = cb.stateTensors?.();
      if (t && Object.keys(t).length > 0) out[keyOf(cb)] = t;
    }
    return out;
  }

  /** Hands each callback its tensors from a checkpoint; tensors no callback takes are disposed. */
  loadStateTensors(byKey: Record<string, Record<string, tf.Tensor>>): void {
    const taken = new Set<string>();
    for (const cb of this.callbacks) {
      const key = keyOf(cb);
      if (byKey[key] && cb.loadStateTensors) {
        cb.loadStateTensors(byKey[key]);
        taken.add(key);
      }
    }
    for (const [key, t] of Object.entries(byKey)) if (!taken.has(key)) tf.dispose(Object.values(t));
  }

  loadStateDict(states: Record<string, Record<string, unknown>>): void {
    for (const cb of this.callbacks) {
      const s = states[keyOf(cb)];
      if (s && cb.loadStateDict) cb.loadStateDict(s);
    }
  }
}

export function keyOf(cb: Callback): string {
  return cb.stateKey ?? cb.constructor.name;
}
