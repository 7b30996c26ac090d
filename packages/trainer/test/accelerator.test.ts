import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, NOTICES, tf } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { callback, createTrainer, provide, type Callback } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';
import { testBackend, TEST_TFJS_BACKEND } from './fixtures/kiln-backend-test/index.js';

/** Records the tfjs backend every training batch ran on. */
function backendSpy() {
  const seen = new Set<string>();
  const cb: Callback = { onTrainBatchStart: () => void seen.add(tf.getBackend()) };
  return { seen, cb };
}

async function fitOnce(plugins: Parameters<typeof createTrainer>[0]) {
  const { seen, cb } = backendSpy();
  const notices: string[] = [];
  const trainer = createTrainer({ maxEpochs: 1, numSanityValSteps: 0, seed: 1, ...plugins, plugins: [provide(NOTICES, (l: string) => void notices.push(l)), callback(cb), ...(plugins?.plugins ?? [])] });
  const module = tinyModule(0, 0.05);
  const { train } = loaders(32, 16, 16);
  try {
    await trainer.fit(module, train);
  } finally {
    trainer.optimizerConfig?.optimizer.dispose();
    module.model.dispose();
  }
  return { trainer, seen, notices };
}

beforeAll(async () => {
  await wasmBackend().init();
});

afterAll(async () => {
  await wasmBackend().init();
});

describe('createTrainer({ accelerator, plugins }): the backend comes from the run container', () => {
  it("'auto' trains on the highest-priority available plugin, a backend from another package, and reports it", async () => {
    const { trainer, seen, notices } = await fitOnce({ accelerator: 'auto', plugins: [cpuBackend(), wasmBackend(), testBackend()] });
    expect([...seen]).toEqual([TEST_TFJS_BACKEND]);
    expect(trainer.accelerator?.name).toBe('test');
    expect(trainer.accelerator?.info.device).toBe('CPU (test package)');
    expect(trainer.accelerator?.reason).toMatch(/^auto: highest-priority available backend \(priority 500\)$/);
    expect(notices).toEqual(['backend: test — CPU (test package) (auto: highest-priority available backend (priority 500))']);
  });

  it("'auto' passes over an unavailable plugin and says why", async () => {
    const { trainer, seen } = await fitOnce({ plugins: [cpuBackend(), testBackend({ unavailable: 'no test device here' })] });
    expect([...seen]).toEqual(['cpu']);
    expect(trainer.accelerator?.reason).toMatch(/skipped test: no test device here/);
  });

  it('a name trains on that backend, though a higher-priority one is registered', async () => {
    const { trainer, seen, notices } = await fitOnce({ accelerator: 'cpu', plugins: [testBackend(), cpuBackend()] });
    expect([...seen]).toEqual(['cpu']);
    expect(trainer.accelerator).toMatchObject({ name: 'cpu', reason: 'requested' });
    expect(notices).toEqual(['backend: cpu — CPU (pure JavaScript reference kernels) (requested)']);
  });

  it('an unavailable name fails before any hook runs, naming the registered alternatives', async () => {
    const hooks: string[] = [];
    const spy: Callback = { setup: () => void hooks.push('setup'), onException: () => void hooks.push('onException') };
    const trainer = createTrainer({ accelerator: 'test', plugins: [cpuBackend(), testBackend({ unavailable: 'no test device here' }), callback(spy)] });
    const module = tinyModule(0, 0.05);
    const e = await trainer.fit(module, loaders(32, 16, 16).train).catch((x: unknown) => x);
    module.model.dispose();
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect((e as BackendUnavailableError).message).toMatch(/^backend 'test' is not available: no test device here\n/);
    expect((e as BackendUnavailableError).message).toMatch(/registered: cpu \(available\)$/);
    expect(hooks).toEqual([]);
    expect(trainer.accelerator).toBeUndefined();
  });

  it('selectAccelerator() chooses before a run, so the model can be built on the backend; runs keep that choice', async () => {
    const notices: string[] = [];
    const trainer = createTrainer({ maxEpochs: 1, numSanityValSteps: 0, plugins: [cpuBackend(), testBackend(), provide(NOTICES, (l: string) => void notices.push(l))] });
    expect(trainer.accelerator).toBeUndefined();
    const choice = await trainer.selectAccelerator();
    expect(await trainer.selectAccelerator()).toBe(choice);
    expect(notices).toHaveLength(1);
    expect(tf.getBackend()).toBe(TEST_TFJS_BACKEND);
    // Something else made current between runs (another trainer, a test): the next run switches back.
    await wasmBackend().init();
    const module = tinyModule(0, 0.05);
    const { val } = loaders(32, 16, 16);
    let during = '';
    module.validationStep = ((orig) =>
      function (this: typeof module, ...args: Parameters<typeof orig>) {
        during = tf.getBackend();
        return orig.apply(this, args);
      })(module.validationStep.bind(module));
    await trainer.validate(module, val);
    module.model.dispose();
    expect(during).toBe(TEST_TFJS_BACKEND);
    expect(trainer.accelerator).toBe(choice);
  });

  it('with no backend plugins the run keeps the tfjs backend already current, as before', async () => {
    await cpuBackend().init();
    const { trainer, seen, notices } = await fitOnce({});
    expect([...seen]).toEqual(['cpu']);
    expect(trainer.accelerator).toMatchObject({ name: 'cpu', reason: 'no backend plugins registered: the tfjs backend already current' });
    expect(notices).toEqual([]);
  });
});
