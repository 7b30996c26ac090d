// The vitest configuration every package's `test` script names (`vitest run --config
// ../../tools/testing/vitest.config.mjs`); the playground merges it into its vite.config.ts.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** The settings all packages share: each test file writes under a temporary directory of its own, removed after it; timeouts sized for a loaded machine. */
export const sharedTest = {
  setupFiles: [fileURLToPath(new URL('./temp-dir.ts', import.meta.url))],
  // vitest's 5 s default is met on a quiet machine and missed on a loaded CI runner by tests that
  // do real work (a PNG round trip timed out there at 5,047 ms); a hang still fails, later.
  testTimeout: 30_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  // The package being tested, not this file's directory.
  root: process.cwd(),
  test: sharedTest,
});
