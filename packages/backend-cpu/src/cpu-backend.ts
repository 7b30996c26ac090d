import { activateTfjsBackend, backendPlugin, type BackendInfo, type BackendProvider } from '@kiln/core';
import '@tensorflow/tfjs-backend-cpu/dist/base.js';
import '@tensorflow/tfjs-backend-cpu/dist/register_all_kernels.js';

/**
 * TensorFlow.js's pure-JavaScript CPU backend. Slow, but it has every kernel and is the oracle the
 * other backends are tested against.
 */
export function cpuBackend(): BackendProvider {
  return backendPlugin({
    name: 'cpu',
    priority: 10,
    async isAvailable() {
      return true;
    },
    async init() {
      await activateTfjsBackend('cpu');
    },
    describe(): BackendInfo {
      return { name: 'cpu', tfjsBackend: 'cpu', device: 'CPU (pure JavaScript reference kernels)' };
    },
  });
}
