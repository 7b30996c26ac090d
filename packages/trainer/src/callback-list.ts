import { tf } from '@kiln/core';
import type { Callback } from './callback.js';

/**
 * Told around every hook the CallbackList dispatches: `owner` is the callback or the module whose
 * hook runs. Calls nest only when a hook itself dispatches hooks (it never does in the Trainer).
 */
export interface HookObserver {
  /** Called just before `owner`'s `hook` runs; `kind` says whether `owner` is a callback or the module. */
  hookStart(hook: keyof Callback, owner: object, kind: 'callback' | 'module'): void;
  /** Called once that hook has returned or thrown (an asynchronous one: once its promise settles), with the same arguments. */
  hookEnd(hook: keyof Callback, owner: object, kind: 'callback' | 'module'): void;
}

/**
 * The only place hooks are dispatched: each callback in registration order, then the module's hook
 * of the same name (Lightning's order: callbacks before the LightningModule).
 */
export class CallbackList {
  constructor(
    /** The callbacks, in the order their hooks fire. */
    readonly callbacks: Callback[],
  ) {}

  /**
   * Observers told when each hook of a callback or of the module starts and ends (the Profiler is
   * one). With none registered, `run` only calls the hook: no timing work unless someone observes.
   */
  private observers: HookObserver[] = [];

  /** Registers an observer of hook dispatch; returns the function that removes it. */
  observe(observer: HookObserver): () => void {
    this.observers = [...this.observers, observer];
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  /** Calls `hook` on every callback, then the module's hook of the same name (without the trainer and module arguments). */
  async call<K extends keyof Callback>(hook: K, module: object, ...args: unknown[]): Promise<void> {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as unknown as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn === 'function') await this.run(hook, cb, 'callback', () => fn.apply(cb, args));
    }
    const own = (module as Record<string, unknown>)[hook];
    if (typeof own === 'function') await this.run(hook, module, 'module', () => (own as (...a: unknown[]) => unknown).apply(module, args.slice(2)));
  }

  /** Synchronous dispatch for hooks that run inside the gradient tape. */
  callSync<K extends keyof Callback>(hook: K, module: object, ...args: unknown[]): void {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as unknown as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn === 'function') this.run(hook, cb, 'callback', () => fn.apply(cb, args));
    }
    const own = (module as Record<string, unknown>)[hook];
    if (typeof own === 'function') this.run(hook, module, 'module', () => (own as (...a: unknown[]) => unknown).apply(module, args.slice(2)));
  }

  /**
   * Runs one hook, between the observers' hookStart and hookEnd (for an asynchronous hook, when its
   * promise settles). Without observers it only runs the hook.
   */
  private run(hook: keyof Callback, owner: object, kind: 'callback' | 'module', f: () => unknown): unknown {
    // A copy: an observer that removes itself inside a hook (the Profiler's teardown) still gets its hookEnd.
    const observers = this.observers;
    if (observers.length === 0) return f();
    for (const o of observers) o.hookStart(hook, owner, kind);
    const end = () => {
      for (const o of observers) o.hookEnd(hook, owner, kind);
    };
    let out: unknown;
    try {
      out = f();
    } catch (e) {
      end();
      throw e;
    }
    if (typeof (out as PromiseLike<unknown> | undefined)?.then === 'function') return Promise.resolve(out).finally(end);
    end();
    return out;
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
