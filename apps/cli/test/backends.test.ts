import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';

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
    });
  }
});
