import { activateTfjsBackend, backendPlugin, type Availability, type BackendInfo, type BackendProvider } from '@kiln/core';
// Registers the 'webgl' backend and its kernels with the engine @kiln/core holds (vite.config.ts
// points this package's @tensorflow/tfjs-core imports at @kiln/core/tfjs-core).
import '@tensorflow/tfjs-backend-webgl';

/** TensorFlow.js's WebGL backend, for browsers without WebGPU. Browser-only, so it lives here. */
export function webglBackend(): BackendProvider {
  let renderer = 'WebGL';
  return backendPlugin({
    name: 'webgl',
    priority: 150,
    async isAvailable() {
      return (await this.availability!()).available;
    },
    async availability(): Promise<Availability> {
      if (typeof document === 'undefined') return { available: false, reason: 'WebGL needs a browser' };
      const gl = document.createElement('canvas').getContext('webgl2');
      if (!gl) return { available: false, reason: 'this browser gives no WebGL 2 context', install: 'enable hardware acceleration, or pick WASM' };
      const debug = gl.getExtension('WEBGL_debug_renderer_info');
      renderer = String(debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
      return { available: true };
    },
    async init() {
      await activateTfjsBackend('webgl');
    },
    describe(): BackendInfo {
      return { name: 'webgl', tfjsBackend: 'webgl', device: `WebGL 2: ${renderer}` };
    },
  });
}
