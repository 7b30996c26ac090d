/**
 * The lean page: LeNet-5 on WebGPU or WASM, nothing else. It imports the model class, not the
 * zoo's registry, so the other architectures stay out of its bundle; tools/scripts/bundle-size.mjs
 * measures this page and CI holds its size (docs/playground.md).
 */
import { wasmBackend } from '@kiln/backend-cpu';
import { webgpuBackend } from '@kiln/backend-webgpu';
import { LeNet5 } from '@kiln/zoo';
import { wasmPaths } from './backends.js';
import { startPlayground } from './page.js';

// Built into dist/lenet5/ beside the full playground, whose data and .wasm files it reads.
const assets = '../';
void startPlayground({
  // The registry's LeNet-5 entry, without the registry: 28×28 grey images by default, 12 px at least
  // (two 2×2 poolings around a valid 5×5 convolution).
  models: { lenet5: { inputShape: [28, 28, 1], minInputSize: 12, create: (o) => new LeNet5(o) } },
  backends: [webgpuBackend(), wasmBackend({ wasmPaths: wasmPaths(assets) })],
  assets,
});
