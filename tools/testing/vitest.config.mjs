// The vitest configuration every package's `test` script names (`vitest run --config
// ../../tools/testing/vitest.config.mjs`); the playground merges it into its vite.config.ts.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** The settings all packages share: each test file writes under a temporary directory of its own, removed after it. */
export const sharedTest = {
  setupFiles: [fileURLToPath(new URL('./temp-dir.ts', import.meta.url))],
};

export default defineConfig({
  // The package being tested, not this file's directory.
  root: process.cwd(),
  test: sharedTest,
});
