import type { CudaSystemReport } from './cuda-probe.js';
import { CudaVersionMismatchError, NoCudaDeviceError, type CudaBackendError } from './errors.js';
import { compareVersions, satisfiesMajorMinor, TFJS_NODE_GPU } from './requirements.js';

const CUDA_WANTED = `11.x from ${TFJS_NODE_GPU.cuda.major}.${TFJS_NODE_GPU.cuda.minMinor} (${TFJS_NODE_GPU.cuda.soname})`;
const CUDNN_WANTED = `8.x from ${TFJS_NODE_GPU.cudnn.major}.${TFJS_NODE_GPU.cudnn.minMinor} (${TFJS_NODE_GPU.cudnn.soname})`;

/**
 * Decides, from what the probe read, whether TensorFlow 2.9's GPU build can use a GPU here; returns
 * the first problem in the order a user has to fix them (device, driver, CUDA, cuDNN), or nothing.
 */
export function checkCudaSystem(report: CudaSystemReport): CudaBackendError | undefined {
  if (report.gpus.length === 0) {
    return new NoCudaDeviceError(
      `no CUDA device is visible: ${report.gpuProblem ?? 'nvidia-smi lists none'}`,
      'install the NVIDIA driver (>= ' + TFJS_NODE_GPU.minDriver + ') so that `nvidia-smi` lists the GPU, check CUDA_VISIBLE_DEVICES, or pick another backend (--backend wasm)',
    );
  }
  const driver = report.gpus[0].driverVersion;
  if (compareVersions(driver, TFJS_NODE_GPU.minDriver) < 0) {
    return new CudaVersionMismatchError('driver', `>= ${TFJS_NODE_GPU.minDriver}`, `${driver} (nvidia-smi)`, 'update the NVIDIA driver');
  }
  const cudaFix = `install the CUDA 11.x runtime (11.2 or later; e.g. the cuda-cudart-11-2 package) and put its lib64 folder on LD_LIBRARY_PATH`;
  const rt = report.cudaRuntime;
  if (!rt) {
    const seen = report.otherCudaRuntimes.length ? report.otherCudaRuntimes.join(', ') : `no libcudart in ${report.searched.join(', ')}`;
    return new CudaVersionMismatchError('cuda', CUDA_WANTED, seen, cudaFix);
  }
  if (!rt.onLoaderPath) {
    return new CudaVersionMismatchError('cuda', CUDA_WANTED + ' on the loader path', `${rt.version} at ${rt.source}, which the dynamic loader does not search`, `export LD_LIBRARY_PATH=${dirOf(rt.source)}:$LD_LIBRARY_PATH`);
  }
  // The soname says 11.x; only the full file name tells 11.0/11.1 (too old) from 11.2+.
  if (rt.version.split('.').length > 2 && !satisfiesMajorMinor(rt.version, TFJS_NODE_GPU.cuda)) {
    return new CudaVersionMismatchError('cuda', CUDA_WANTED, `${rt.version} (${rt.source})`, cudaFix);
  }
  const cudnnFix = 'install cuDNN 8.1 or a later 8.x for CUDA 11 (e.g. libcudnn8 from NVIDIA\'s repository) and put it on LD_LIBRARY_PATH';
  const dnn = report.cudnn;
  if (!dnn) {
    const seen = report.otherCudnns.length ? report.otherCudnns.join(', ') : `no libcudnn in ${report.searched.join(', ')}`;
    return new CudaVersionMismatchError('cudnn', CUDNN_WANTED, seen, cudnnFix);
  }
  if (!dnn.onLoaderPath) {
    return new CudaVersionMismatchError('cudnn', CUDNN_WANTED + ' on the loader path', `${dnn.version} at ${dnn.source}, which the dynamic loader does not search`, `export LD_LIBRARY_PATH=${dirOf(dnn.source)}:$LD_LIBRARY_PATH`);
  }
  if (dnn.version.split('.').length > 1 && !satisfiesMajorMinor(dnn.version, TFJS_NODE_GPU.cudnn)) {
    return new CudaVersionMismatchError('cudnn', CUDNN_WANTED, `${dnn.version} (${dnn.source})`, cudnnFix);
  }
  return undefined;
}

function dirOf(file: string): string {
  const i = file.lastIndexOf('/');
  return i > 0 ? file.slice(0, i) : file;
}
