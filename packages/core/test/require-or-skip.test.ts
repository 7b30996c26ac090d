/**
 * The repository's test plumbing (tools/testing/require-or-skip.ts and tools/scripts/test-summary.mjs),
 * tested here because core's suite runs first and needs nothing built.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { MissingRequirementError, requireOrSkip, underCi } from '../../../tools/testing/require-or-skip.js';

const SUMMARY = path.resolve(__dirname, '../../../tools/scripts/test-summary.mjs');
const savedCi = process.env.CI;

afterEach(() => {
  if (savedCi === undefined) delete process.env.CI;
  else process.env.CI = savedCi;
});

/** A stand-in for vitest's test context that records the skip instead of ending the test. */
function fakeContext() {
  const skips: (string | undefined)[] = [];
  const ctx = {
    task: { meta: {} as TestContext['task']['meta'] },
    skip: (note?: string) => {
      skips.push(note);
    },
  };
  return { ctx: ctx as unknown as TestContext, meta: ctx.task.meta, skips };
}

describe('requireOrSkip', () => {
  it('does nothing when the requirement is met', () => {
    process.env.CI = 'true';
    const { ctx, meta, skips } = fakeContext();
    requireOrSkip(ctx, undefined);
    requireOrSkip(ctx, false);
    expect(skips).toEqual([]);
    expect(meta).toEqual({});
  });

  it('outside CI, skips with the reason and records it for the summary', () => {
    delete process.env.CI;
    const { ctx, meta, skips } = fakeContext();
    requireOrSkip(ctx, 'no dataset here');
    expect(skips).toEqual(['no dataset here']);
    expect(meta).toEqual({ skipReason: 'no dataset here' });
  });

  it('under CI, fails with the reason instead of skipping', () => {
    process.env.CI = 'true';
    const { ctx, skips } = fakeContext();
    expect(() => requireOrSkip(ctx, 'no dataset here')).toThrow(MissingRequirementError);
    expect(() => requireOrSkip(ctx, 'no dataset here')).toThrow(/no dataset here \(required under CI/);
    expect(skips).toEqual([]);
  });

  it('under CI, still skips what the allow-list names, saying why', () => {
    process.env.CI = '1';
    const { ctx, meta, skips } = fakeContext();
    requireOrSkip(ctx, 'tfjs-node-gpu is not installed', 'tfjs-node-gpu');
    expect(skips).toEqual(['tfjs-node-gpu is not installed']);
    expect(meta.skipAllowed).toBe('tfjs-node-gpu');
    expect(meta.skipReason).toMatch(/^tfjs-node-gpu is not installed \[allowed: .*NVIDIA GPU/);
  });

  it('reads CI as most CI services set it', () => {
    expect([undefined, '', '0', 'false', 'FALSE'].map((v) => underCi({ CI: v }))).toEqual([false, false, false, false, false]);
    expect(['true', '1', 'yes'].map((v) => underCi({ CI: v }))).toEqual([true, true, true]);
  });
});

describe('test-summary.mjs', () => {
  type Result = { fullName: string; status: string; meta?: Record<string, string> };
  /** A workspace of one package whose vitest report holds `tests`; returns the script's exit code and output. */
  function summarise(tests: Result[], env: Record<string, string | undefined>, fileStatus = 'passed') {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-summary-'));
    const pkg = path.join(root, 'packages', 'demo');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@kiln/demo', scripts: { test: 'vitest run' } }));
    const report = { testResults: [{ name: path.join(pkg, 'test', 'a.test.ts'), status: fileStatus, message: fileStatus === 'failed' ? 'Error: boom\n  at x' : '', assertionResults: tests }] };
    writeFileSync(path.join(pkg, '.vitest-report.json'), JSON.stringify(report));
    const r = spawnSync(process.execPath, [SUMMARY], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: r.status, out: r.stdout, last: r.stdout.trim().split('\n').pop() };
  }
  const withSkips: Result[] = [
    { fullName: 'a works', status: 'passed' },
    { fullName: 'b needs a GPU', status: 'skipped', meta: { skipReason: 'no GPU [allowed: …]', skipAllowed: 'tfjs-node-gpu' } },
    { fullName: 'c bare skip', status: 'skipped' },
  ];

  it('closes with passed, failed and skipped counts, and lists each skip with its reason', () => {
    const r = summarise(withSkips, { CI: '' });
    expect(r.last).toBe('tests: 1 passed, 0 failed, 2 skipped');
    expect(r.out).toContain('skipped: packages/demo/test/a.test.ts > b needs a GPU — no GPU [allowed: …]');
    expect(r.out).toContain('skipped: packages/demo/test/a.test.ts > c bare skip — no reason recorded');
    expect(r.code).toBe(0);
  });

  it('under CI, fails on a skip that is not on the allow-list', () => {
    const bare = summarise(withSkips, { CI: 'true' });
    expect(bare.code).toBe(1);
    expect(bare.out).toMatch(/1 skipped test\(s\) are not allowed under CI/);
    expect(summarise(withSkips.slice(0, 2), { CI: 'true' }).code).toBe(0);
  });

  it('counts a test file that failed to load as a failure', () => {
    const r = summarise([], { CI: '' }, 'failed');
    expect(r.out).toContain('failed: packages/demo/test/a.test.ts (the file failed: Error: boom)');
    expect(r.last).toBe('tests: 0 passed, 1 failed, 0 skipped');
    expect(r.code).toBe(1);
  });
});
