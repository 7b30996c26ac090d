import { tf } from '@kiln/core';
import type { Callback } from './callback.js';
import type { Trainer } from './trainer.js';

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
 * of the same name (Lightning's order: callbacks before the LightningModule). Two exceptions, also
 * Lightning 2.x's: `onTrainEpochEnd` of the callbacks that set `monitorsMetrics` (ModelCheckpoint,
 * EarlyStopping, ReduceLROnPlateau) runs after the module's, so they can watch a metric the
 * module's `onTrainEpochEnd` logs; and the module's `onLoadCheckpoint` runs before the callbacks'.
 * docs/hooks.md lists the whole order.
 */
export class CallbackList {
  constructor(
    /** The callbacks, in the order their hooks fire. */
    readonly callbacks: Callback[],
  ) {}

  /**
   * The hooks (and steps: `trainingStep`, …) running now, innermost last: where a `module.log`
   * call comes from.
   * @internal
   */
  readonly running: string[] = [];

  /**
   * Called once the module's place in a dispatch is passed (whether or not the module implements
   * the hook), before any callback that runs after the module: the trainer commits what the hook
   * logged there.
   * @internal
   */
  afterModuleHook?: (hook: keyof Callback) => void | Promise<void>;

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
    // Lightning restores the module before the callbacks: its on_load_checkpoint comes first.
    const late = hook === 'onTrainEpochEnd' ? this.callbacks.filter((cb) => cb.monitorsMetrics) : hook === 'onLoadCheckpoint' ? this.callbacks : [];
    for (const cb of this.callbacks) {
      const fn = cb[hook] as unknown as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn === 'function' && !late.includes(cb)) await this.run(hook, cb, 'callback', () => fn.apply(cb, args));
    }
    const own = (module as Record<string, unknown>)[hook];
    if (typeof own === 'function') await this.run(hook, module, 'module', () => (own as (...a: unknown[]) => unknown).apply(module, args.slice(2)));
    await this.afterModuleHook?.(hook);
    for (const cb of late) {
      const fn = cb[hook] as unknown as ((...a: unknown[]) => unknown) | undefined;
      if (typeof fn === 'function') await this.run(hook, cb, 'callback', () => fn.apply(cb, args));
    }
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
   * promise settles), with its name on `running` meanwhile.
   */
  private run(hook: keyof Callback, owner: object, kind: 'callback' | 'module', f: () => unknown): unknown {
    // A copy: an observer that removes itself inside a hook (the Profiler's teardown) still gets its hookEnd.
    const observers = this.observers;
    const running = this.running;
    running.push(hook);
    for (const o of observers) o.hookStart(hook, owner, kind);
    const end = () => {
      running.pop();
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

  /** True when some callback reads this step's logged values (`needsStepMetrics`). */
  needStepMetrics(trainer: Trainer, batchIdx: number): boolean {
    return this.callbacks.some((cb) => cb.needsStepMetrics?.(trainer, batchIdx) === true);
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
