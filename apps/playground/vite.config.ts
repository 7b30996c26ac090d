/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Two builds. The default one is the full playground (index.html: every zoo model and backend).
 * `vite build --mode lenet5` builds the lean page (lenet5.html: LeNet-5 on WebGPU/WASM) on its own,
 * into dist/lenet5/ beside it: built together, the two pages would share one chunk holding the whole
 * zoo, which the full page needs, and the lean page would load it too. The lean page reads the
 * data and .wasm files of the full build (`../`, see src/lenet5.ts). tools/scripts/bundle-size.mjs
 * measures it.
 */
export default defineConfig(({ mode }) => {
  const lean = mode === 'lenet5';
  return {
    // The setup every package's tests share (tools/testing/vitest.config.mjs): a temporary
    // directory per test file, removed after it.
    test: { setupFiles: [fileURLToPath(new URL('../../tools/testing/temp-dir.ts', import.meta.url))] },
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
