import { describe, expect, it } from 'vitest';
import { BackendRegistry, BackendUnavailableError, ConfigError } from '@kiln/core';
import { fakeBackend } from './fake-backend.js';

const fake = fakeBackend;

describe('BackendRegistry', () => {
  it('auto picks the highest-priority available backend and says what it skipped', async () => {
    const log: string[] = [];
    const reg = new BackendRegistry([fake('slow', 10, true, log), fake('gpu', 300, false, log, 'no adapter'), fake('fast', 100, true, log)]);
    const choice = await reg.use('auto');
    expect(choice.name).toBe('fast');
    expect(choice.reason).toMatch(/gpu: no adapter/);
    expect(log).toEqual(['init fast']);
  });

  it('an explicit unavailable backend throws BackendUnavailableError with the install step', async () => {
    const reg = new BackendRegistry([fake('cuda', 300, false, [], 'tfjs-node-gpu is not installed')]);
    await expect(reg.use('cuda')).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(reg.use('cuda')).rejects.toThrow(/npm i cuda/);
  });

  it('an unknown name lists the known ones', async () => {
    const reg = new BackendRegistry([fake('wasm', 100, true, [])]);
    await expect(reg.use('tpu')).rejects.toBeInstanceOf(ConfigError);
    await expect(reg.use('tpu')).rejects.toThrow(/auto, wasm/);
  });
});
