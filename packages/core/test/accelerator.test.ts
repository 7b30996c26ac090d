import { describe, expect, it } from 'vitest';
// @kiln/core first: it loads reflect-metadata, which tsyringe needs before it loads.
import { ACCELERATOR, AcceleratorConnector, BACKENDS, BackendUnavailableError, ConfigError, NOTICES, backendPlugin, type BackendPlugin } from '@kiln/core';
import { container as root } from 'tsyringe';
import { fakeBackend } from './fake-backend.js';

/** A backend that records its inits; `tfjsBackend` is a name tfjs never has, so `select()` re-inits only when asked to. */
function fake(name: string, priority: number, available: boolean, log: string[], reason = 'missing') {
  return backendPlugin(fakeBackend(name, priority, available, log, reason, `fake-${name}`));
}

function runWith(plugins: ((c: typeof root) => void)[], accelerator?: string) {
  const run = root.createChildContainer();
  const notices: string[] = [];
  run.register(NOTICES, { useValue: (l: string) => notices.push(l) });
  if (accelerator) run.register(ACCELERATOR, { useValue: accelerator });
  for (const p of plugins) p(run);
  return { connector: run.resolve(AcceleratorConnector), notices };
}

describe('backendPlugin', () => {
  it('is a plugin that registers the backend under BACKENDS, and still the backend itself', async () => {
    const log: string[] = [];
    const p = fake('fast', 100, true, log);
    expect(p.name).toBe('fast');
    expect(p.priority).toBe(100);
    const run = root.createChildContainer();
    p(run);
    expect(run.resolveAll(BACKENDS)).toEqual([p]);
    await p.init();
    expect(log).toEqual(['init fast']);
  });

  it("carries a class-based backend's prototype methods too", async () => {
    class Custom implements BackendPlugin {
      readonly name = 'custom';
      readonly priority = 5;
      inits = 0;
      async isAvailable() {
        return true;
      }
      async init() {
        this.inits++;
      }
      describe() {
        return { name: this.name, tfjsBackend: 'custom', device: `custom after ${this.inits} init(s)` };
      }
    }
    const p = backendPlugin(new Custom());
    await p.init();
    expect(p.describe().device).toBe('custom after 1 init(s)');
  });
});

describe('AcceleratorConnector', () => {
  it("'auto' takes the highest-priority available backend, once, and reports it", async () => {
    const log: string[] = [];
    const { connector, notices } = runWith([fake('slow', 10, true, log), fake('gpu', 300, false, log, 'no adapter'), fake('fast', 100, true, log)]);
    expect(connector.choice).toBeUndefined();
    const choice = await connector.select();
    expect(choice.name).toBe('fast');
    expect(choice.reason).toMatch(/^auto: highest-priority available backend \(priority 100\); skipped gpu: no adapter$/);
    expect(connector.choice).toBe(choice);
    expect(notices).toEqual(['backend: fast — fast device (auto: highest-priority available backend (priority 100); skipped gpu: no adapter)']);
    // tfjs's current backend is not fake-fast, so a later select() makes it current again, without choosing again.
    expect(await connector.select()).toBe(choice);
    expect(notices).toHaveLength(1);
    expect(log).toEqual(['init fast', 'init fast']);
  });

  it('a name takes that backend even when a higher-priority one is available', async () => {
    const log: string[] = [];
    const { connector } = runWith([fake('slow', 10, true, log), fake('fast', 100, true, log)], 'slow');
    const choice = await connector.select();
    expect(choice).toMatchObject({ name: 'slow', reason: 'requested' });
    expect(log).toEqual(['init slow']);
  });

  it('an unavailable name throws BackendUnavailableError naming the others and why each unavailable one is', async () => {
    const log: string[] = [];
    const { connector } = runWith([fake('wasm', 100, true, log), fake('cuda', 300, false, log, 'tfjs-node-gpu is not installed'), fake('webgpu', 250, false, log, 'no adapter')], 'cuda');
    const e = await connector.select().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    const err = e as BackendUnavailableError;
    expect(err.reason).toBe('tfjs-node-gpu is not installed');
    expect(err.fix).toBe('npm i cuda');
    expect(err.alternatives).toEqual([
      { name: 'wasm', available: true },
      { name: 'webgpu', available: false, reason: 'no adapter' },
    ]);
    expect(err.message).toMatch(/\n {2}registered: wasm \(available\), webgpu \(unavailable: no adapter\)$/);
    expect(log).toEqual([]);
    expect(connector.choice).toBeUndefined();
  });

  it('an unknown name is a ConfigError listing the registered names', async () => {
    const { connector } = runWith([fake('wasm', 100, true, [])], 'tpu');
    await expect(connector.select()).rejects.toBeInstanceOf(ConfigError);
    await expect(connector.select()).rejects.toThrow(/one of: auto, wasm/);
  });

  it('a name with no backend plugins registered is a ConfigError that says to register one', async () => {
    const { connector } = runWith([], 'webgpu');
    const e = await connector.select().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).hint).toMatch(/plugins: \[wasmBackend\(\)/);
  });
});
