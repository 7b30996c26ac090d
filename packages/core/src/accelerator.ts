import { container as rootContainer, inject, injectAll, injectable, type DependencyContainer } from 'tsyringe';
import * as tf from './tfjs-core.js';
import { BackendRegistry, type BackendChoice, type BackendPlugin } from './backend.js';
import { ConfigError } from './errors.js';
import { ACCELERATOR, BACKENDS, NOTICES, type Plugin } from './tokens.js';

/**
 * How a run's notices are printed when nobody registered `NOTICES`: stderr in Node (stdout is the
 * user's: the CLI and the examples print JSON there), the console elsewhere.
 */
function printNotice(line: string): void {
  const stderr = (globalThis as { process?: { stderr?: { write?: (s: string) => unknown } } }).process?.stderr;
  if (typeof stderr?.write === 'function') stderr.write(`${line}\n`);
  else console.info(line);
}

/** The one-line report of a choice, as the CLI prints it. */
export function describeChoice(choice: BackendChoice): string {
  return `backend: ${choice.name} — ${choice.info.device} (${choice.reason})`;
}

/**
 * Picks a run's backend, once, from the `BACKENDS` registered in the run's container: under
 * `ACCELERATOR` = `'auto'` (the default) the highest-priority available one, else the one named.
 * The choice is kept (`choice`) and written once to `NOTICES`.
 *
 * Starting a tfjs backend is asynchronous, so the choice is made by `select()`, not by the
 * constructor: the Trainer calls it at the start of `fit`/`validate`/`test`/`predict`, and a
 * composition root that builds tensors before training (the CLI loads data and builds the model
 * first) calls it itself, from the same container, so both see one choice.
 *
 * With no `BACKENDS` registered and `'auto'`, the run keeps the tfjs backend the caller made
 * current (`await wasmBackend().init()` before training), as before backends were composed.
 */
@injectable()
export class AcceleratorConnector {
  private readonly registry: BackendRegistry;
  private chosen?: BackendChoice;
  private pending?: Promise<BackendChoice>;

  constructor(
    @injectAll(BACKENDS, { isOptional: true }) backends: BackendPlugin[] = [],
    /** What the run asked for: `'auto'` or a backend's name. */
    @inject(ACCELERATOR, { isOptional: true }) readonly requested: string = 'auto',
    @inject(NOTICES, { isOptional: true }) private readonly notify: (line: string) => void = printNotice,
  ) {
    this.registry = new BackendRegistry(backends ?? []);
    this.requested = requested ?? 'auto';
    this.notify = notify ?? printNotice;
  }

  /** Names of the backends the run may choose from, in registration order. */
  get names(): string[] {
    return this.registry.names();
  }

  /** The choice, once `select()` has made it. */
  get choice(): BackendChoice | undefined {
    return this.chosen;
  }

  /**
   * Starts the run's backend (the first call chooses it; later calls return the same choice) and
   * makes it tfjs's current backend again if something else was made current meanwhile.
   * Throws `BackendUnavailableError` when the named backend cannot run here, listing the others
   * and why each unavailable one is unavailable; `ConfigError` for a name nobody registered.
   */
  async select(): Promise<BackendChoice> {
    if (!this.pending) {
      this.pending = this.choose().catch((e: unknown) => {
        this.pending = undefined;
        throw e;
      });
      return this.pending;
    }
    const choice = await this.pending;
    const plugin = this.registry.get(choice.name);
    // `backendName` rather than getBackend(), which would start tfjs's own pick when none is current.
    if (plugin && tf.engine().backendName !== choice.info.tfjsBackend) await plugin.init();
    return choice;
  }

  private async choose(): Promise<BackendChoice> {
    if (this.registry.names().length === 0) {
      if (this.requested !== 'auto') {
        throw new ConfigError('accelerator', 'a backend registered as a plugin', this.requested, `register its backend plugin with the run (createTrainer({ accelerator, plugins: [wasmBackend(), …] })), or use accelerator 'auto'`);
      }
      const name = tf.getBackend();
      this.chosen = { name, info: { name, tfjsBackend: name, device: `tfjs backend '${name}'` }, reason: 'no backend plugins registered: the tfjs backend already current' };
      return this.chosen;
    }
    this.chosen = await this.registry.use(this.requested);
    this.notify(describeChoice(this.chosen));
    return this.chosen;
  }
}

/**
 * A run's container for a composition root other than `createTrainer` (the CLI, which starts the
 * backend before it loads data): a child of `parent` (default: tsyringe's root) with `plugins`
 * registered and one `AcceleratorConnector` for the run. `createTrainer({ container })` on it
 * keeps the connector's choice for the Trainer.
 */
export function createRunContainer(plugins: readonly Plugin[] = [], parent: DependencyContainer = rootContainer): DependencyContainer {
  const run = parent.createChildContainer();
  for (const p of plugins) p(run);
  run.registerSingleton(AcceleratorConnector);
  return run;
}
