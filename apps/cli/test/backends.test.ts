import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kiln/core';
import { createTrainer } from '@kiln/trainer';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { cliBackends, startRun } from '../src/backends.js';

const cli = path.resolve(__dirname, '../dist/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
const installed = (pkg: string) => {
  try {
    createRequire(cli).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};

// Where the package is installed these would start a real run instead; the backend packages' own
// real-backend tests cover that machine.
describe('kiln train --backend with a native backend that is not installed', () => {
  for (const [backend, pkg] of [
    ['cuda', '@tensorflow/tfjs-node-gpu'],
    ['cpu-native', '@tensorflow/tfjs-node'],
  ] as const) {
    it(`--backend ${backend}: exits 1 with the reason and the npm command, no stack trace`, (ctx) => {
      requireOrSkip(ctx, installed(pkg) && `${pkg} is installed here, so the run would start`, pkg === '@tensorflow/tfjs-node' ? 'tfjs-node' : 'tfjs-node-gpu');
      const r = run('train', '--model', 'lenet5', '--backend', backend);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`kiln: error: backend '${backend}' is not available: ${pkg} is not installed`);
      expect(r.stderr).toContain(`fix: npm install ${pkg}@^4.22.0`);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).toBe('');
      // The error lists what could run instead.
      expect(r.stderr).toMatch(/registered: wasm \(available\), cpu \(available\)/);
    });
  }
});

describe("the CLI's run container", () => {
  it('holds every backend the CLI knows, as plugins', () => {
    expect(cliBackends().map((b) => (b as unknown as { name: string }).name)).toEqual(['wasm', 'cpu', 'cpu-native', 'cuda', 'webgpu']);
  });

  it('starts the --backend choice before any trainer exists, prints it once, and the trainer made on it keeps that choice', async () => {
    const lines: string[] = [];
    const run = await startRun('cpu', (l) => void lines.push(l));
    expect(run.backend).toMatchObject({ name: 'cpu', reason: 'requested' });
    expect(lines).toEqual(['backend: cpu — CPU (pure JavaScript reference kernels) (requested)']);
    const trainer = createTrainer({ container: run.container, maxEpochs: 1 });
    expect(await trainer.selectAccelerator()).toBe(run.backend);
    expect(trainer.accelerator).toBe(run.backend);
    expect(lines).toHaveLength(1);
  });

  it('an unknown --backend names the ones there are', async () => {
    const e = await startRun('tpu', () => {}).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).expected).toBe('one of: auto, wasm, cpu, cpu-native, cuda, webgpu');
  });
});
