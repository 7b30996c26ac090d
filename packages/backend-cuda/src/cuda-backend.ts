import { activateTfjsBackend, backendPlugin, tf, type Availability, type BackendInfo, type BackendPlugin, type BackendProvider } from '@kiln/core';
import { checkCudaSystem } from './check-cuda.js';
import { nodeSystemAccess, probeCudaSystem, type CudaSystemReport, type SystemAccess } from './cuda-probe.js';
import { CudaBackendError, NoCudaDeviceError, TensorflowBackendConflictError, LibtensorflowLoadError } from './errors.js';
import { importModule, loadTfjsNodeGpu, type Importer, type TfjsNodeModule } from './load-tfjs-node-gpu.js';
import { TFJS_NODE_GPU } from './requirements.js';

export interface CudaBackendOptions {
  /** Loads `@tensorflow/tfjs-node-gpu`. Default: Node's `import()`. Tests pass a fake that throws what Node throws. */
  importer?: Importer;
  /** How the machine is read (nvidia-smi, library folders, environment). Default: the real machine. */
  system?: SystemAccess;
  /**
   * Skip Kiln's driver/CUDA/cuDNN version checks and let TensorFlow decide. For a libtensorflow
   * built against other CUDA versions and installed through tfjs-node's `custom-binary.json`.
   * A GPU must still be visible, and TensorFlow must still report using it.
   */
  skipVersionCheck?: boolean;
}

/** What a successful probe found; kept for `init` and `describe`. */
export interface CudaProbeResult {
  /** What the probe found: libraries, GPUs, driver. */
  report: CudaSystemReport;
  /** The loaded `@tensorflow/tfjs-node-gpu`. */
  module: TfjsNodeModule;
}

/** The plugin, plus `diagnose()`: the probe's result, or the typed `CudaBackendError` it failed with. */
export interface CudaBackendPlugin extends BackendPlugin {
  /** Probes the CUDA stack; resolves to the report or rejects with the `CudaBackendError` that explains the failure. */
  diagnose(): Promise<CudaProbeResult>;
}

/** The tfjs backend name tfjs-node-gpu registers. */
const TFJS_BACKEND = 'tensorflow';
/** Above every other backend under `auto`: a working CUDA GPU is the fastest thing Kiln can use. */
const PRIORITY = 300;

/**
 * The `cuda` backend: TensorFlow's native kernels on an NVIDIA GPU, through
 * `@tensorflow/tfjs-node-gpu` (an optional peer dependency, loaded only when this backend is
 * probed). The probe reads nvidia-smi and the CUDA/cuDNN libraries first, then imports the
 * package, whose module body registers the `tensorflow` backend into the process-wide tfjs
 * registry that Kiln's engine reads (see docs/backends.md, "one engine").
 */
export function cudaBackend(options: CudaBackendOptions = {}): BackendProvider<CudaBackendPlugin> {
  const importer = options.importer ?? importModule;
  const system = options.system ?? nodeSystemAccess();
  let probe: Promise<CudaProbeResult> | undefined;
  let info: BackendInfo | undefined;

  async function diagnose(): Promise<CudaProbeResult> {
    const report = await probeCudaSystem(system);
    const noGpu = report.gpus.length === 0 ? `no GPU is visible here either (${report.gpuProblem})` : undefined;
    const module = await loadTfjsNodeGpu(importer, noGpu);
    if (tf.findBackendFactory(TFJS_BACKEND) == null) {
      // Only possible if tfjs-node-gpu brought a tfjs-core that does not share the global registry.
      throw new LibtensorflowLoadError('load-failed', `${TFJS_NODE_GPU.packageName} loaded but registered no '${TFJS_BACKEND}' backend in Kiln's engine`);
    }
    const problem = options.skipVersionCheck && report.gpus.length > 0 ? undefined : checkCudaSystem(report);
    if (problem) throw problem;
    return { report, module };
  }

  const once = () => (probe ??= diagnose());

  async function availability(): Promise<Availability> {
    try {
      await once();
      return { available: true };
    } catch (e) {
      if (e instanceof CudaBackendError) return { available: false, reason: e.reason, install: e.fix };
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  return backendPlugin({
    name: 'cuda',
    priority: PRIORITY,
    diagnose: once,
    async isAvailable() {
      return (await availability()).available;
    },
    availability,
    async init() {
      const { report, module } = await once();
      await activateTfjsBackend(TFJS_BACKEND);
      const backend = tf.backend() as unknown as { isGPUPackage?: boolean; isUsingGpuDevice?: boolean; binding?: { TF_Version?: string } };
      if (backend.isGPUPackage === false) throw new TensorflowBackendConflictError();
      if (backend.isUsingGpuDevice === false) {
        throw new NoCudaDeviceError(
          'libtensorflow loaded but registered no GPU device (its log above, "Could not load dynamic library …", names the library it could not open)',
          'install the CUDA 11.2+ and cuDNN 8.1+ libraries TensorFlow 2.9 opens (libcublas.so.11, libcufft.so.10, libcurand.so.10, libcusolver.so.11, libcusparse.so.11 besides libcudart and libcudnn) and put them on LD_LIBRARY_PATH',
        );
      }
      info = describeFound(report, module, backend.binding?.TF_Version);
    },
    describe(): BackendInfo {
      return info ?? { name: 'cuda', tfjsBackend: TFJS_BACKEND, device: 'NVIDIA GPU via tfjs-node-gpu (not initialised)' };
    },
  });
}

function describeFound(report: CudaSystemReport, module: TfjsNodeModule, tfVersion: string | undefined): BackendInfo {
  const gpu = report.gpus[0];
  const details: Record<string, string | number> = {
    gpus: report.gpus.length,
    memoryMiB: gpu.memoryMiB,
    driver: gpu.driverVersion,
  };
  if (report.cudaRuntime) details.cuda = `${report.cudaRuntime.version} (${report.cudaRuntime.source})`;
  if (report.cudnn) details.cudnn = `${report.cudnn.version} (${report.cudnn.source})`;
  if (tfVersion) details.libtensorflow = tfVersion;
  const pkgVersion = module.version?.['tfjs-node'];
  if (pkgVersion) details[TFJS_NODE_GPU.packageName] = pkgVersion;
  return { name: 'cuda', tfjsBackend: TFJS_BACKEND, device: `${gpu.name} (${gpu.memoryMiB} MiB, GPU ${gpu.index})`, details };
}
