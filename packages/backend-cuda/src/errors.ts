import { BackendUnavailableError } from '@kiln/core';
import { TFJS_NODE_GPU } from './requirements.js';

/** Which check failed: callers branch on this, never on the message text. */
export type CudaFailure = 'package-missing' | 'package-incomplete' | 'libtensorflow' | 'cuda-version' | 'no-gpu' | 'backend-conflict';

/**
 * Why the `cuda` backend cannot start. Each failure has its own subclass below; all of them are
 * `BackendUnavailableError`s, so code that only cares "can this backend run" catches one type.
 */
export abstract class CudaBackendError extends BackendUnavailableError {
  /** Which failure, for code that branches on it. */
  abstract readonly failure: CudaFailure;
  declare readonly fix: string;

  constructor(reason: string, fix: string, cause?: unknown) {
    super('cuda', reason, fix, cause);
  }
}

const DOCS = 'docs/backends.md ("cuda")';

/** `@tensorflow/tfjs-node-gpu` cannot be found from where Kiln is installed. */
export class TfjsNodeGpuMissingError extends CudaBackendError {
  /** Which failure this is. */
  readonly failure = 'package-missing' as const;
  /** `note`: a second finding worth knowing before installing (e.g. that no GPU is visible either). */
  constructor(note?: string, cause?: unknown) {
    super(
      `${TFJS_NODE_GPU.packageName} is not installed` + (note ? `; note: ${note}` : ''),
      `npm install ${TFJS_NODE_GPU.packageName}@${TFJS_NODE_GPU.versionRange} (its install step downloads libtensorflow ${TFJS_NODE_GPU.libtensorflow} for GPU; offline or behind a mirror, see ${DOCS})`,
      cause,
    );
  }
}

/** The package is there but one of its own dependencies is not (a partial or pruned install). */
export class TfjsNodeGpuIncompleteError extends CudaBackendError {
  /** Which failure this is. */
  readonly failure = 'package-incomplete' as const;
  constructor(missing: string, cause?: unknown) {
    super(
      `${TFJS_NODE_GPU.packageName} is installed but its dependency '${missing}' cannot be found`,
      `reinstall it: npm install ${TFJS_NODE_GPU.packageName}@${TFJS_NODE_GPU.versionRange}`,
      cause,
    );
  }
}

/** What went wrong with the native half of the package. */
export type LibtensorflowProblem =
  /** `tfjs_binding.node` was never built or downloaded: the install step did not finish. */
  | 'binding-missing'
  /** The binding exists but the dynamic loader cannot find libtensorflow next to it. */
  | 'library-missing'
  /** libtensorflow was found but does not load (wrong architecture, too old a glibc, …). */
  | 'load-failed';

/** The install step's download of libtensorflow (or of the addon) did not happen or did not load. */
export class LibtensorflowLoadError extends CudaBackendError {
  /** Which failure this is. */
  readonly failure = 'libtensorflow' as const;
  /** The addon is missing, libtensorflow is missing, or loading it failed. */
  readonly problem: LibtensorflowProblem;
  constructor(problem: LibtensorflowProblem, detail: string, cause?: unknown) {
    const pkg = TFJS_NODE_GPU.packageName;
    const what = {
      'binding-missing': `${pkg} is installed but its native addon was never downloaded or built (${detail})`,
      'library-missing': `${pkg}'s native addon cannot find libtensorflow ${TFJS_NODE_GPU.libtensorflow} (${detail})`,
      'load-failed': `libtensorflow ${TFJS_NODE_GPU.libtensorflow} failed to load (${detail})`,
    }[problem];
    const fix =
      problem === 'load-failed'
        ? `libtensorflow ${TFJS_NODE_GPU.libtensorflow} needs Linux x86_64 with glibc >= 2.17; reinstall with network access: npm rebuild ${pkg}`
        : `run its install step with network access: npm install-scripts approve ${pkg} (npm 11 skips unapproved install scripts), then npm rebuild ${pkg}. It downloads libtensorflow from storage.googleapis.com; ` +
          `through a mirror set TFJS_NODE_CDN_STORAGE=<mirror>/ (or TFJS_NODE_BASE_URI) and npm_config_tfjs_binding_binary_host_mirror=<mirror>/tf-builds/pre-built-binary/; ` +
          `fully offline, unpack libtensorflow-gpu-linux-x86_64-${TFJS_NODE_GPU.libtensorflow}.tar.gz into node_modules/${pkg}/deps/ and follow ${DOCS}`;
    super(what, fix, cause);
    this.problem = problem;
  }
}

/** A CUDA library TensorFlow needs is absent or of a version tfjs-node-gpu 4.x cannot use. */
export class CudaVersionMismatchError extends CudaBackendError {
  /** Which failure this is. */
  readonly failure = 'cuda-version' as const;
  /** Which part of the CUDA stack has the wrong version. */
  readonly component: 'cuda' | 'cudnn' | 'driver';
  /** The versions that work, e.g. `11.x from 11.2 (libcudart.so.11.0)`. */
  readonly required: string;
  /** What is on this machine, with the file it was read from. */
  readonly detected: string;
  constructor(component: 'cuda' | 'cudnn' | 'driver', required: string, detected: string, fix: string) {
    const label = { cuda: 'CUDA runtime', cudnn: 'cuDNN', driver: 'NVIDIA driver' }[component];
    super(`${TFJS_NODE_GPU.packageName} 4.x (libtensorflow ${TFJS_NODE_GPU.libtensorflow}) needs ${label} ${required}, found ${detected}`, fix);
    this.component = component;
    this.required = required;
    this.detected = detected;
  }
}

/** No CUDA device is visible to this process. */
export class NoCudaDeviceError extends CudaBackendError {
  /** Which failure this is. */
  readonly failure = 'no-gpu' as const;
  constructor(reason: string, fix: string) {
    super(reason, fix);
  }
}

/**
 * tfjs-node (CPU) and tfjs-node-gpu both register a tfjs backend named `tensorflow`; whichever
 * loads first owns the name for the life of the process.
 */
export class TensorflowBackendConflictError extends CudaBackendError {
  /** Which failure this is. */
  readonly failure = 'backend-conflict' as const;
  constructor() {
    super(
      "the 'tensorflow' backend in this process was registered by @tensorflow/tfjs-node (the CPU build), which was loaded before " + TFJS_NODE_GPU.packageName,
      'load only one of them: uninstall @tensorflow/tfjs-node, or use --backend cpu-native for the CPU build',
    );
  }
}
