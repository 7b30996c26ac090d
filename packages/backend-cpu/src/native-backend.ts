import { activateTfjsBackend, backendPlugin, BackendUnavailableError, nodeBuiltin, tf, type Availability, type BackendInfo, type BackendProvider } from '@kiln/core';

/**
 * `cpu-native`: TensorFlow's own C++ CPU kernels through `@tensorflow/tfjs-node`, an optional peer
 * dependency imported only when this backend is probed. Its module body registers the `tensorflow`
 * backend into tfjs's process-wide registry, which Kiln's engine shares (docs/backends.md, "one
 * engine"). What 4.22.0 needs, read from its published tarball: libtensorflow 2.9.1
 * (`scripts/deps-constants.js`), downloaded by its install script from storage.googleapis.com.
 */
const PACKAGE = '@tensorflow/tfjs-node';
const VERSION_RANGE = '^4.22.0';
const LIBTENSORFLOW = '2.9.1';
const TFJS_BACKEND = 'tensorflow';
const DOCS = 'docs/backends.md ("cpu-native")';

/** Options of {@link cpuNativeBackend}. */
export interface CpuNativeBackendOptions {
  /** Loads `@tensorflow/tfjs-node`. Default: `import()`. Tests pass a fake that throws what Node throws. */
  importer?: (specifier: string) => Promise<unknown>;
}

/** Which check failed: callers branch on this, never on the message text. */
export type CpuNativeFailure = 'package-missing' | 'package-incomplete' | 'libtensorflow' | 'backend-conflict';

/** Why `cpu-native` cannot start; one subclass per failure, all `BackendUnavailableError`s. */
export abstract class CpuNativeBackendError extends BackendUnavailableError {
  /** Which failure, for code that branches on it. */
  abstract readonly failure: CpuNativeFailure;
  declare readonly fix: string;
  constructor(reason: string, fix: string, cause?: unknown) {
    super('cpu-native', reason, fix, cause);
  }
}

export class TfjsNodeMissingError extends CpuNativeBackendError {
  /** Which failure this is. */
  readonly failure = 'package-missing' as const;
  constructor(cause?: unknown) {
    super(`${PACKAGE} is not installed`, `npm install ${PACKAGE}@${VERSION_RANGE} (its install step downloads libtensorflow ${LIBTENSORFLOW}; offline or behind a mirror, see ${DOCS})`, cause);
  }
}

export class TfjsNodeIncompleteError extends CpuNativeBackendError {
  /** Which failure this is. */
  readonly failure = 'package-incomplete' as const;
  constructor(missing: string, cause?: unknown) {
    super(`${PACKAGE} is installed but its dependency '${missing}' cannot be found`, `reinstall it: npm install ${PACKAGE}@${VERSION_RANGE}`, cause);
  }
}

/** See `LibtensorflowProblem` in @kiln/backend-cuda: the same three ways the native half fails. */
export class TfjsNodeLibtensorflowError extends CpuNativeBackendError {
  /** Which failure this is. */
  readonly failure = 'libtensorflow' as const;
  /** The addon is missing, libtensorflow is missing, or loading it failed. */
  readonly problem: 'binding-missing' | 'library-missing' | 'load-failed';
  constructor(problem: 'binding-missing' | 'library-missing' | 'load-failed', detail: string, cause?: unknown) {
    const what = {
      'binding-missing': `${PACKAGE} is installed but its native addon was never downloaded or built (${detail})`,
      'library-missing': `${PACKAGE}'s native addon cannot find libtensorflow ${LIBTENSORFLOW} (${detail})`,
      'load-failed': `libtensorflow ${LIBTENSORFLOW} failed to load (${detail})`,
    }[problem];
    const fix =
      problem === 'load-failed'
        ? `libtensorflow ${LIBTENSORFLOW} needs Linux x86_64 (glibc >= 2.17), macOS or Windows x86_64; reinstall with network access: npm rebuild ${PACKAGE}`
        : `run its install step: npm install-scripts approve ${PACKAGE} (npm 11 skips unapproved install scripts), then npm rebuild ${PACKAGE}. It downloads libtensorflow from storage.googleapis.com unless node_modules/${PACKAGE}/deps/lib already holds it; ` +
          `through a mirror set TFJS_NODE_CDN_STORAGE=<mirror>/ (or TFJS_NODE_BASE_URI) and npm_config_tfjs_binding_binary_host_mirror=<mirror>/tf-builds/pre-built-binary/; ` +
          `fully offline, unpack libtensorflow-cpu-linux-x86_64-${LIBTENSORFLOW}.tar.gz into node_modules/${PACKAGE}/deps/ first (${DOCS})`;
    super(what, fix, cause);
    this.problem = problem;
  }
}

export class TfjsNodeBackendConflictError extends CpuNativeBackendError {
  /** Which failure this is. */
  readonly failure = 'backend-conflict' as const;
  constructor() {
    super(
      `the '${TFJS_BACKEND}' backend in this process was registered by @tensorflow/tfjs-node-gpu, which was loaded before ${PACKAGE}`,
      'load only one of them: use --backend cuda for the GPU build, or uninstall @tensorflow/tfjs-node-gpu',
    );
  }
}

/**
 * Maps what `import('@tensorflow/tfjs-node')` throws to the errors above. The texts are Node's
 * (`ERR_MODULE_NOT_FOUND` "Cannot find package '…'", `MODULE_NOT_FOUND` "Cannot find module '…'",
 * `ERR_DLOPEN_FAILED` "libtensorflow.so.2: cannot open shared object file: …"), Vite's and so
 * vitest's ('Could not resolve "…" imported by …', no code), and tfjs-node's own ("The Node.js
 * native addon module (tfjs_binding.node) can not be found at path: ….").
 */
export function classifyTfjsNodeLoadError(e: unknown): CpuNativeBackendError {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const firstLine = message.split('\n')[0];
  const notFound = /Cannot find (?:package|module) '([^']+)'|Could not resolve "([^"]+)"/.exec(message);
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND' || notFound) {
    const missing = notFound?.[1] ?? notFound?.[2] ?? firstLine;
    return missing === PACKAGE ? new TfjsNodeMissingError(e) : new TfjsNodeIncompleteError(missing, e);
  }
  const binding = /native addon module \(tfjs_binding\.node\) can not be found at path: (.*?)\.\s/.exec(message + ' ');
  if (binding) return new TfjsNodeLibtensorflowError('binding-missing', `no ${binding[1]}`, e);
  if (err?.code === 'ERR_DLOPEN_FAILED' || /cannot open shared object file|Library not loaded|image not found/.test(message)) {
    const libMissing = /libtensorflow\S*: cannot open shared object file|Library not loaded: @rpath\/libtensorflow|image not found/.test(message);
    return new TfjsNodeLibtensorflowError(libMissing ? 'library-missing' : 'load-failed', firstLine, e);
  }
  return new TfjsNodeLibtensorflowError('load-failed', firstLine, e);
}

/**
 * tfjs-node's own copy of the tfjs union package registers the `cpu` and `webgl` kernels again in
 * the shared registry, one "already registered" warning each (~300 lines). tfjs prints warnings
 * only while its IS_TEST and PROD flags are off, so IS_TEST is on during the import, then restored.
 */
async function importQuietly(importer: (specifier: string) => Promise<unknown>): Promise<unknown> {
  const env = tf.env();
  const was = env.getBool('IS_TEST');
  env.set('IS_TEST', true);
  try {
    return await importer(PACKAGE);
  } finally {
    env.set('IS_TEST', was);
  }
}

/** The `cpu-native` plugin. Priority 200: above WASM under `auto` when tfjs-node is installed and loads. */
export function cpuNativeBackend(options: CpuNativeBackendOptions = {}): BackendProvider {
  // A variable specifier keeps TypeScript and bundlers from resolving the optional peer at build time.
  const importer = options.importer ?? ((specifier: string) => import(/* webpackIgnore: true */ /* @vite-ignore */ specifier));
  let loaded: Promise<{ version?: Record<string, string> }> | undefined;
  let info: BackendInfo | undefined;

  const load = () =>
    (loaded ??= importQuietly(importer).then(
      (mod) => {
        if (tf.findBackendFactory(TFJS_BACKEND) == null) {
          throw new TfjsNodeLibtensorflowError('load-failed', `${PACKAGE} loaded but registered no '${TFJS_BACKEND}' backend in Kiln's engine`);
        }
        // `import()` of a CommonJS package puts module.exports on `default`.
        const m = mod as { default?: { version?: Record<string, string> }; version?: Record<string, string> };
        return m.default ?? m;
      },
      (e) => {
        throw classifyTfjsNodeLoadError(e);
      },
    ));

  async function availability(): Promise<Availability> {
    try {
      await load();
      return { available: true };
    } catch (e) {
      if (e instanceof CpuNativeBackendError) return { available: false, reason: e.reason, install: e.fix };
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  return backendPlugin({
    name: 'cpu-native',
    priority: 200,
    async isAvailable() {
      return (await availability()).available;
    },
    availability,
    async init() {
      const mod = await load();
      await activateTfjsBackend(TFJS_BACKEND);
      const backend = tf.backend() as unknown as { isGPUPackage?: boolean; binding?: { TF_Version?: string } };
      if (backend.isGPUPackage === true) throw new TfjsNodeBackendConflictError();
      const os = nodeBuiltin<typeof import('node:os')>('os');
      const details: Record<string, string | number> = {};
      if (backend.binding?.TF_Version) details.libtensorflow = backend.binding.TF_Version;
      if (mod.version?.['tfjs-node']) details[PACKAGE] = mod.version['tfjs-node'];
      const cores = os?.availableParallelism?.() ?? os?.cpus?.().length;
      if (cores) details.cores = cores;
      info = { name: 'cpu-native', tfjsBackend: TFJS_BACKEND, device: `CPU (TensorFlow ${backend.binding?.TF_Version ?? LIBTENSORFLOW} native kernels)`, details };
    },
    describe(): BackendInfo {
      return info ?? { name: 'cpu-native', tfjsBackend: TFJS_BACKEND, device: 'CPU via tfjs-node (not initialised)' };
    },
  });
}
