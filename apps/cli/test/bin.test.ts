import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = path.resolve(__dirname, '../bin/kiln.mjs');
const probe = path.resolve(__dirname, 'fixtures/young-generation-probe.cjs');

/**
 * Runs `kiln <command> --help` with the probe preloaded and returns each size (MiB, both
 * semi-spaces) V8's young generation took from the end of the command on, while the probe makes it grow.
 */
function youngGenerationSizes(command: string, nodeArgs: string[] = [], env: NodeJS.ProcessEnv = {}): number[] {
  const r = spawnSync(process.execPath, [...nodeArgs, '--require', probe, bin, command, '--help'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, KILN_V8_DEFAULTS: undefined, ...env } });
  expect(r.status).toBe(0);
  const line = /young-generation-sizes (\[.*\])/.exec(r.stderr);
  expect(line, r.stderr).not.toBeNull();
  return JSON.parse(line![1]) as number[];
}

describe('the kiln launcher (bin/kiln.mjs)', () => {
  it('runs the built command', () => {
    const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/usage: kiln <command>/);
  });

  // V8 would double the young generation (1 MiB per semi-space) up to its cap as a training run
  // allocates, stepping RSS up after the first epoch; the launcher has it grow to the cap at once.
  it('has V8 grow the young generation to its cap in one step for the commands that train', () => {
    const sizes = youngGenerationSizes('train');
    const cap = Math.max(...sizes);
    expect(cap).toBeGreaterThanOrEqual(8);
    // Every size the probe saw is the cap: the growth that happened while kiln loaded went straight there.
    expect(sizes.every((s) => s === cap), JSON.stringify(sizes)).toBe(true);
  }, 30_000);

  it("keeps V8's doubling for other commands, with KILN_V8_DEFAULTS=1 and with the user's own growth flag", () => {
    const cases = [
      ['evaluate', [], {}],
      ['train', [], { KILN_V8_DEFAULTS: '1' }],
      ['train', ['--semi-space-growth-factor=2'], {}],
    ] as const;
    for (const [command, args, env] of cases) {
      const sizes = youngGenerationSizes(command, [...args], env);
      const cap = Math.max(...sizes);
      // Below the cap when kiln finished, reached only by further doubling under the probe.
      expect(sizes[0], JSON.stringify(sizes)).toBeLessThan(cap);
      expect(sizes.at(-1)).toBe(cap);
    }
  }, 60_000);

  it('applies it to real commands only', async () => {
    const launcherModule: string = path.resolve(__dirname, '../bin/young-generation.mjs');
    const { TRAINING_COMMANDS } = (await import(launcherModule)) as { TRAINING_COMMANDS: Set<string> };
    // The command list `kiln --help` prints: each name at the start of an indented line.
    const usage = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', timeout: 60_000 }).stdout;
    const names = [...usage.matchAll(/^ {2}(\S+) /gm)].map((m) => m[1]);
    expect(names).toContain('evaluate');
    expect(TRAINING_COMMANDS.size).toBeGreaterThan(0);
    for (const name of TRAINING_COMMANDS) expect(names).toContain(name);
  }, 30_000);

  it('is what npm links as `kiln`, so the command exists before the first build', async () => {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default as { bin: Record<string, string>; files: string[] };
    expect(pkg.bin).toEqual({ kiln: './bin/kiln.mjs' });
    expect(pkg.files).toContain('bin');
  });
});

/**
 * Starts the trial process a `kiln worker` runs (dist/trial-child.js) with the probe preloaded and
 * arguments `kiln train` refuses, so it reports an error over IPC and exits; returns the young
 * generation's sizes from the end of the run on.
 */
function trialYoungGenerationSizes(env: NodeJS.ProcessEnv): Promise<number[]> {
  const child = path.resolve(__dirname, '../dist/trial-child.js');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--require', probe, child, '--no-such-flag'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, KILN_V8_DEFAULTS: undefined, ...env } });
    let stderr = '';
    const messages: unknown[] = [];
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('message', (m) => messages.push(m));
    p.on('error', reject);
    p.on('exit', () => {
      try {
        expect(messages).toContainEqual(expect.objectContaining({ type: 'error' }));
        const line = /young-generation-sizes (\[.*\])/.exec(stderr);
        expect(line, stderr).not.toBeNull();
        resolve(JSON.parse(line![1]) as number[]);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

describe('the trial process of `kiln worker`', () => {
  it('sizes the young generation like `kiln train`: the next growth goes to the cap, unless KILN_V8_DEFAULTS=1', async () => {
    const sized = await trialYoungGenerationSizes({});
    const cap = Math.max(...sized);
    expect(cap).toBeGreaterThanOrEqual(8);
    // Whatever it grew to while loading, its first growth after that reaches the cap.
    expect(sized.slice(1).every((s) => s === cap), JSON.stringify(sized)).toBe(true);
    const doubling = await trialYoungGenerationSizes({ KILN_V8_DEFAULTS: '1' });
    const doublingCap = Math.max(...doubling);
    // V8's own doubling: the first growth after loading stops below the cap.
    expect(doubling[1], JSON.stringify(doubling)).toBeLessThan(doublingCap);
  }, 60_000);
});
