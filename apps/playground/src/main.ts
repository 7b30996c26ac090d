/** The full playground: every zoo model, every backend a browser can run. */
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { webgpuBackend } from '@kiln/backend-webgpu';
import { MODELS } from '@kiln/zoo';
import { wasmPaths } from './backends.js';
import { startPlayground } from './page.js';
import { webglBackend } from './webgl-backend.js';

const assets = import.meta.env.BASE_URL;
const lenet5First = { lenet5: MODELS.lenet5, ...MODELS };
void startPlayground({
  models: lenet5First,
  backends: [webgpuBackend(), wasmBackend({ wasmPaths: wasmPaths(assets) }), webglBackend(), cpuBackend()],
  assets,
});
