/// <reference types="vitest/config" />
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The lean page is the full page's markup with its own title and entry script, so it is made from
 * index.html rather than kept as a second copy that drifts: lenet5.html is written here (it is
 * git-ignored) before either build or the dev server reads it. A change to index.html that removes
 * what is replaced fails here, not as a lean page that silently loads the full playground.
 */
function writeLeanPage(): void {
  const page = readFileSync(new URL('index.html', import.meta.url), 'utf8');
  const swaps: [string, string][] = [
    ['<title>Kiln playground — train in the browser</title>', '<title>Kiln playground — LeNet-5</title>'],
    ['<script type="module" src="/src/main.ts"></script>', '<script type="module" src="/src/lenet5.ts"></script>'],
  ];
  let lean = page;
  for (const [from, to] of swaps) {
    if (!lean.includes(from)) throw new Error(`apps/playground/vite.config.ts: index.html no longer contains ${from}, which the lean page replaces`);
    lean = lean.replace(from, to);
  }
  const file = new URL('lenet5.html', import.meta.url);
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // not written yet
  }
  if (current !== lean) writeFileSync(file, lean);
}

/**
 * Two builds. The default one is the full playground (index.html: every zoo model and backend).
 * `vite build --mode lenet5` builds the lean page (lenet5.html, made from index.html below: LeNet-5 on WebGPU/WASM) on its own,
 * into dist/lenet5/ beside it: built together, the two pages would share one chunk holding the whole
 * zoo, which the full page needs, and the lean page would load it too. The lean page reads the
 * data and .wasm files of the full build (`../`, see src/lenet5.ts). tools/scripts/bundle-size.mjs
 * measures it.
 */
export default defineConfig(({ mode }) => {
  const lean = mode === 'lenet5';
  writeLeanPage();
  return {
    // The setup every package's tests share (tools/testing/vitest.config.mjs): a temporary
    // directory per test file, removed after it, and timeouts sized for a loaded machine.
    test: { setupFiles: [fileURLToPath(new URL('../../tools/testing/temp-dir.ts', import.meta.url))], testTimeout: 30_000, hookTimeout: 60_000 },
    // Relative asset URLs, so the built pages work from any directory or static host.
    base: './',
    publicDir: lean ? false : 'public',
    resolve: {
      // One TensorFlow.js engine: tfjs packages the page imports directly (the WebGL backend) must
      // register with the copy @kiln/core embeds, as the Kiln backends already do.
      alias: [{ find: /^@tensorflow\/tfjs-core$/, replacement: '@kiln/core/tfjs-core' }],
    },
    build: {
      target: 'es2022',
      chunkSizeWarningLimit: 8000,
      outDir: lean ? 'dist/lenet5' : 'dist',
      // The full build empties dist/ first; the lean one, run after it, only its own folder.
      emptyOutDir: true,
      rollupOptions: { input: fileURLToPath(new URL(lean ? 'lenet5.html' : 'index.html', import.meta.url)) },
    },
  };
});
