import { BackendRegistry, BackendUnavailableError, tf } from '@kiln/core';
import { afterEach, describe, expect, it } from 'vitest';
import { cudaBackend } from '../src/cuda-backend.js';
import { nodeSystemAccess } from '../src/cuda-probe.js';
import { CudaVersionMismatchError, LibtensorflowLoadError, NoCudaDeviceError, TensorflowBackendConflictError, TfjsNodeGpuMissingError } from '../src/errors.js';
import { fakeSystem, goodMachine } from './fake-system.js';

const notInstalled = async () => {
  throw Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node-gpu' imported from /app/node_modules/@kiln/backend-cuda/dist/index.js"), { code: 'ERR_MODULE_NOT_FOUND' });
};

/**
 * Stands in for tfjs-node-gpu's module body: registers a `tensorflow` backend the way its index
 * does (into the process-wide registry Kiln's engine reads) with the fields Kiln inspects.
 */
function fakeTfjsNodeGpu(backendFields: { isGPUPackage: boolean; isUsingGpuDevice: boolean }) {
  let imported = 0;
  const importer = async (specifier: string) => {
    expect(specifier).toBe('@tensorflow/tfjs-node-gpu');
    imported++;
    tf.registerBackend('tensorflow', () => Object.assign(new tf.KernelBackend(), backendFields, { binding: { TF_Version: '2.9.1' }, dispose() {} }), 3);
    return { default: { version: { 'tfjs-core': '4.22.0', 'tfjs-node': '4.22.0' } } };
  };
  return { importer, count: () => imported };
}

afterEach(() => {
  if (tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
});

describe('cudaBackend', () => {
  it('package not installed: unavailable with the npm command, and init throws TfjsNodeGpuMissingError noting the missing GPU too', async () => {
    const p = cudaBackend({ importer: notInstalled, system: fakeSystem({}) });
    expect(p.name).toBe('cuda');
    expect(p.priority).toBe(300);
    expect(await p.isAvailable()).toBe(false);
    const a = await p.availability!();
    expect(a.reason).toBe('@tensorflow/tfjs-node-gpu is not installed; note: no GPU is visible here either (nvidia-smi is not on PATH, so no NVIDIA driver is installed here)');
    expect(a.install).toMatch(/^npm install @tensorflow\/tfjs-node-gpu@\^4\.22\.0/);
    const e = await p.init().catch((x) => x);
    expect(e).toBeInstanceOf(TfjsNodeGpuMissingError);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e.failure).toBe('package-missing');
  });

  it('through the registry: an explicit request fails with the reason and the fix; auto skips cuda and says why', async () => {
    const reg = new BackendRegistry([cudaBackend({ importer: notInstalled, system: fakeSystem(goodMachine()) })]);
    const e = await reg.use('cuda').catch((x) => x);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e.message).toBe(
      "backend 'cuda' is not available: @tensorflow/tfjs-node-gpu is not installed\n  where: cuda\n  fix: npm install @tensorflow/tfjs-node-gpu@^4.22.0 (its install step downloads libtensorflow 2.9.1 for GPU; offline or behind a mirror, see docs/backends.md (\"cuda\"))",
    );
    const auto = await reg.use('auto').catch((x) => x);
    expect(auto.message).toMatch(/no backend could start \(cuda: @tensorflow\/tfjs-node-gpu is not installed\)/);
  });

  it('libtensorflow failing to load surfaces as LibtensorflowLoadError', async () => {
    const importer = async () => {
      throw Object.assign(new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory'), { code: 'ERR_DLOPEN_FAILED' });
    };
    const e = await cudaBackend({ importer, system: fakeSystem(goodMachine()) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(LibtensorflowLoadError);
    expect(e.problem).toBe('library-missing');
  });

  it("a tfjs-core copy that did not share Kiln's registry (no 'tensorflow' factory after the import) is caught, not trusted", async () => {
    const e = await cudaBackend({ importer: async () => ({ default: {} }), system: fakeSystem(goodMachine()) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(LibtensorflowLoadError);
    expect(e.reason).toBe("libtensorflow 2.9.1 failed to load (@tensorflow/tfjs-node-gpu loaded but registered no 'tensorflow' backend in Kiln's engine)");
  });

  it('installed but no GPU visible: NoCudaDeviceError', async () => {
    const fake = fakeTfjsNodeGpu({ isGPUPackage: true, isUsingGpuDevice: false });
    const e = await cudaBackend({ importer: fake.importer, system: fakeSystem(goodMachine({ env: { CUDA_VISIBLE_DEVICES: '' } })) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(NoCudaDeviceError);
    expect(e.reason).toBe('no CUDA device is visible: CUDA_VISIBLE_DEVICES="" hides all 1 GPU(s) nvidia-smi lists');
  });

  it('installed, GPU visible, wrong cuDNN: CudaVersionMismatchError; skipVersionCheck lets TensorFlow decide', async () => {
    const files = { ...goodMachine().files, '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': 'libcudnn.so.8.0.5', '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.0.5': '' };
    const fake = fakeTfjsNodeGpu({ isGPUPackage: true, isUsingGpuDevice: true });
    const e = await cudaBackend({ importer: fake.importer, system: fakeSystem(goodMachine({ files })) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(CudaVersionMismatchError);
    expect(e.component).toBe('cudnn');
    tf.removeBackend('tensorflow');
    await cudaBackend({ importer: fake.importer, system: fakeSystem(goodMachine({ files })), skipVersionCheck: true }).init();
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('TensorFlow loaded but using no GPU (a CUDA library it could not open): NoCudaDeviceError pointing at its log', async () => {
    const fake = fakeTfjsNodeGpu({ isGPUPackage: true, isUsingGpuDevice: false });
    const e = await cudaBackend({ importer: fake.importer, system: fakeSystem(goodMachine()) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(NoCudaDeviceError);
    expect(e.reason).toMatch(/registered no GPU device/);
  });

  it("the 'tensorflow' backend owned by tfjs-node (CPU build): TensorflowBackendConflictError", async () => {
    const fake = fakeTfjsNodeGpu({ isGPUPackage: false, isUsingGpuDevice: false });
    const e = await cudaBackend({ importer: fake.importer, system: fakeSystem(goodMachine()) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(TensorflowBackendConflictError);
  });

  it('all present: registers tensorflow as cuda, probes once, and describes device, memory, CUDA and cuDNN with their sources', async () => {
    const fake = fakeTfjsNodeGpu({ isGPUPackage: true, isUsingGpuDevice: true });
    const p = cudaBackend({ importer: fake.importer, system: fakeSystem(goodMachine()) });
    expect(p.describe().device).toMatch(/not initialised/);
    const choice = await new BackendRegistry([p]).use('auto');
    expect(choice.name).toBe('cuda');
    expect(tf.getBackend()).toBe('tensorflow');
    expect(fake.count()).toBe(1);
    expect(p.describe()).toEqual({
      name: 'cuda',
      tfjsBackend: 'tensorflow',
      device: 'NVIDIA H100 80GB HBM3 (81559 MiB, GPU 0)',
      details: {
        gpus: 1,
        memoryMiB: 81559,
        driver: '550.54.15',
        cuda: '11.2.152 (/usr/local/cuda-11.2/lib64/libcudart.so.11.2.152)',
        cudnn: '8.1.1 (/usr/lib/x86_64-linux-gnu/libcudnn.so.8.1.1)',
        libtensorflow: '2.9.1',
        '@tensorflow/tfjs-node-gpu': '4.22.0',
      },
    });
  });

  it('on this machine, with the real loader and probe, it never throws from the probe and names a reason', async () => {
    const a = await cudaBackend({ system: nodeSystemAccess() }).availability!();
    if (!a.available) expect(a.reason).toMatch(/tfjs-node-gpu|GPU|CUDA|cuDNN|libtensorflow|driver/);
  });
});
