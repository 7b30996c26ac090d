import * as tf from './tfjs-core.js';
import { BackendUnavailableError, ConfigError, type BackendStatus } from './errors.js';

/** What a backend says about itself once initialised. */
export interface BackendInfo {
  /** Kiln's name for it (`wasm`, `cpu`, `webgpu`, `cuda`, …). */
  name: string;
  /** The tfjs backend it registers (`wasm`, `cpu`, `webgpu`, `tensorflow`). */
  tfjsBackend: string;
  /** Human-readable device: adapter name, CPU threads, GPU model. */
  device: string;
  /** Extra facts worth printing (thread count, SIMD, driver versions). */
  details?: Record<string, string | number | boolean>;
}

/** Why a backend can or cannot run here. */
export interface Availability {
  /** Whether the backend can run here. */
  available: boolean;
  /** When unavailable: the reason in one sentence. */
  reason?: string;
  /** When unavailable: the command or setting that fixes it. */
  install?: string;
  /** Available backends may adjust their priority once probed (a software GPU ranks below WASM). */
  priority?: number;
}

/**
 * A backend plugin. Backends are discovered by Kiln through these objects, never by name lookup
 * inside library code: a composition root registers the ones it wants under `BACKENDS` in the
 * run's container (`createTrainer({ plugins: [wasmBackend(), webgpuBackend()] })`), where the
 * run's `AcceleratorConnector` picks one, or hands them to a `BackendRegistry` itself.
 */
export interface BackendPlugin {
  /** Kiln's name for it, as `use(name)` takes it. */
  readonly name: string;
  /** Higher wins under `auto`. Reference values: cuda 300, webgpu (hardware) 250, cpu-native 200, wasm 100, webgpu (software) 50, cpu 10. */
  readonly priority: number;
  /** Cheap probe; must not throw. */
  isAvailable(): Promise<boolean>;
  /** Optional detail behind `isAvailable`. */
  availability?(): Promise<Availability>;
  /** Registers the tfjs backend and makes it current. Throws `BackendUnavailableError` when it cannot. */
  init(): Promise<void>;
  /** What it runs on, once initialised. */
  describe(): BackendInfo;
}

/** What `BackendRegistry.use` picked. */
export interface BackendChoice {
  /** The backend's name. */
  name: string;
  /** Its `describe()` after initialisation. */
  info: BackendInfo;
  /** Why this one: "requested", or the ranking under `auto` with the reasons others were skipped. */
  reason: string;
}

/** Holds the plugins a run may use and picks one. */
export class BackendRegistry {
  private readonly plugins = new Map<string, BackendPlugin>();

  constructor(plugins: Iterable<BackendPlugin> = []) {
    for (const p of plugins) this.add(p);
  }

  /** Adds a plugin (replacing one of the same name). */
  add(plugin: BackendPlugin): this {
    this.plugins.set(plugin.name, plugin);
    return this;
  }

  /** Names of the plugins held, in the order added. */
  names(): string[] {
    return [...this.plugins.keys()];
  }

  /** The plugin called `name`, if held. */
  get(name: string): BackendPlugin | undefined {
    return this.plugins.get(name);
  }

  private async probe(p: BackendPlugin): Promise<Availability> {
    try {
      if (p.availability) return await p.availability();
      return { available: await p.isAvailable() };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  /** Every plugin but `except`, probed: what a user could ask for instead. */
  private async statuses(except: string): Promise<BackendStatus[]> {
    const out: BackendStatus[] = [];
    for (const p of this.plugins.values()) {
      if (p.name === except) continue;
      const a = await this.probe(p);
      out.push(a.available ? { name: p.name, available: true } : { name: p.name, available: false, reason: a.reason ?? 'its probe failed' });
    }
    return out;
  }

  /**
   * Initialises the named backend, or under `auto` the highest-priority available one.
   * An explicit name that is unavailable throws `BackendUnavailableError` with the install step and
   * the other registered backends (`alternatives`), each probed.
   */
  async use(name: string = 'auto'): Promise<BackendChoice> {
    if (name !== 'auto') {
      const p = this.plugins.get(name);
      if (!p) {
        throw new ConfigError('backend', `one of: auto, ${this.names().join(', ')}`, name);
      }
      const a = await this.probe(p);
      if (!a.available) throw new BackendUnavailableError(name, a.reason ?? 'its probe failed', a.install, undefined, await this.statuses(name));
      await p.init();
      return { name, info: p.describe(), reason: 'requested' };
    }
    const ranked: { p: BackendPlugin; a: Availability; prio: number }[] = [];
    for (const p of this.plugins.values()) {
      const a = await this.probe(p);
      ranked.push({ p, a, prio: a.priority ?? p.priority });
    }
    ranked.sort((x, y) => y.prio - x.prio);
    const skipped: string[] = [];
    for (const { p, a, prio } of ranked) {
      if (!a.available) {
        skipped.push(`${p.name}: ${a.reason ?? 'unavailable'}`);
        continue;
      }
      try {
        await p.init();
      } catch (e) {
        skipped.push(`${p.name}: init failed (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
        continue;
      }
      const why = `auto: highest-priority available backend (priority ${prio})` + (skipped.length ? `; skipped ${skipped.join('; ')}` : '');
      return { name: p.name, info: p.describe(), reason: why };
    }
    throw new BackendUnavailableError('auto', `no backend could start (${skipped.join('; ') || 'none registered'})`, 'install @kiln/backend-cpu');
  }
}

/** Registers a tfjs backend factory under a name unless one is registered already, then selects it. */
export async function activateTfjsBackend(name: string, factory?: () => tf.KernelBackend | Promise<tf.KernelBackend>, priority = 1): Promise<void> {
  if (factory && tf.findBackendFactory(name) == null) tf.registerBackend(name, factory, priority);
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendUnavailableError(name, `tfjs could not initialise backend '${name}'`);
  await tf.ready();
}
