import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = path.resolve(__dirname, '../bin/kiln.mjs');

describe('the kiln launcher (bin/kiln.mjs)', () => {
  it('runs the built command', () => {
    const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/usage: kiln <command>/);
  });

  it('is what npm links as `kiln`, so the command exists before the first build', async () => {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default as { bin: Record<string, string>; files: string[] };
    expect(pkg.bin).toEqual({ kiln: './bin/kiln.mjs' });
    expect(pkg.files).toContain('bin');
  });
});
