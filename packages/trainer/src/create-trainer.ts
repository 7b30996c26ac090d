import { container as rootContainer, type DependencyContainer, type InjectionToken } from 'tsyringe';
import { ACCELERATOR, AcceleratorConnector, BACKENDS, type Plugin } from '@kiln/core';
import type { Callback } from './callback.js';
import type { Logger } from './logger.js';
import { Trainer, type TrainerOptions } from './trainer.js';
import { CALLBACKS, LOGGERS, TRAINER_OPTIONS } from './tokens.js';

/** Registers a callback instance (any object implementing some hooks) for a run. */
export function callback(cb: Callback): Plugin {
  return (c) => {
    c.register(CALLBACKS, { useValue: cb });
  };
}

/**
 * Registers a callback class: the run's container constructs it, so its constructor can receive
 * anything registered there (`@inject(TOKEN)`), exactly as the Trainer receives its callbacks.
 * The class must be `@injectable()`.
 */
export function callbackClass(cls: new (...args: never[]) => Callback): Plugin {
  return (c) => {
    c.register(CALLBACKS, { useClass: cls as new (...args: unknown[]) => Callback });
  };
}

/** Registers a value under a token of the run's container (options for injected callbacks, say). */
export function provide<T>(token: InjectionToken<T>, value: T): Plugin {
  return (c) => {
    c.register(token, { useValue: value });
  };
}

/** Registers a logger for a run. */
export function logger(l: Logger): Plugin {
  return (c) => {
    c.register(LOGGERS, { useValue: l });
  };
}

/** Options of {@link createTrainer}: the Trainer's, plus the plugins of the run and its backend. */
export interface CreateTrainerOptions extends TrainerOptions {
  /**
   * Backends (`wasmBackend()`, `webgpuBackend()`, `cudaBackend()`, …), callbacks, loggers and
   * anything else a run needs, as plugins.
   */
  plugins?: Plugin[];
  /**
   * Which of the backends among `plugins` the run uses: `'auto'` (default), the highest-priority
   * one that can run here, or a backend's name (`'wasm'`, `'webgpu'`, …), which must be able to
   * run here. Chosen by `await trainer.selectAccelerator()` or at the start of the first run, and
   * reported by `trainer.accelerator`. With no backend plugins, the run keeps the tfjs backend
   * already current.
   */
  accelerator?: string;
  /** Parent container (default: tsyringe's root). Each run gets a child of it. */
  container?: DependencyContainer;
}

/**
 * Composition root: a child container per run, the plugins registered into it, the Trainer
 * resolved once. Runs never share callback or logger instances unless the caller passes the same.
 *
 * The backend is chosen from the run's `BACKENDS` by one `AcceleratorConnector` per run. A parent
 * `container` that holds a connector already (the CLI registers one, to start the backend before
 * it loads data and builds the model) keeps its choice for the run, unless this call brings
 * backends or an `accelerator` of its own.
 */
export function createTrainer(options: CreateTrainerOptions = {}): Trainer {
  const { plugins = [], container = rootContainer, accelerator, ...trainerOptions } = options;
  const run = container.createChildContainer();
  run.register(TRAINER_OPTIONS, { useValue: trainerOptions });
  if (accelerator !== undefined) run.register(ACCELERATOR, { useValue: accelerator });
  for (const p of plugins) p(run);
  const inherited = container.isRegistered(AcceleratorConnector, true) && !run.isRegistered(BACKENDS) && !run.isRegistered(ACCELERATOR);
  if (!inherited) run.registerSingleton(AcceleratorConnector);
  run.register(Trainer, { useClass: Trainer });
  return run.resolve(Trainer);
}
