import { defineConfig } from 'vite';

export default defineConfig({
  // Relative asset URLs, so the built page works from any directory or static host.
  base: './',
  resolve: {
    // One TensorFlow.js engine: tfjs packages the page imports directly (the WebGL backend) must
    // register with the copy @kiln/core embeds, as the Kiln backends already do.
    alias: [{ find: /^@tensorflow\/tfjs-core$/, replacement: '@kiln/core/tfjs-core' }],
  },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
  },
});
