import { tf } from '@kiln/core';
import { LibtensorflowLoadError, TfjsNodeGpuIncompleteError, TfjsNodeGpuMissingError, type CudaBackendError } from './errors.js';
import { TFJS_NODE_GPU } from './requirements.js';

/** Loads a module by specifier. The default is Node's `import()`; tests pass a fake that throws what Node would. */
export type Importer = (specifier: string) => Promise<unknown>;

/**
 * The specifier sits in a variable so that neither TypeScript (which has no types for an optional
 * peer) nor a bundler tries to resolve it at build time: the package is looked up at run time,
 * next to wherever Kiln is installed, and only when the `cuda` backend is asked for.
 */
export const importModule: Importer = (specifier) => import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);

/** The parts of tfjs-node-gpu's exports Kiln reads. */
export interface TfjsNodeModule {
  /** Package versions, including `tfjs-node`, merged by tfjs-node's index. */
  version?: Record<string, string>;
}

/**
 * Imports tfjs-node-gpu, whose module body registers the `tensorflow` backend and its kernels into
 * the process-wide tfjs registry. Rejects with the typed error for what went wrong.
 * `noteIfMissing`: appended to the not-installed message (e.g. that no GPU is visible either).
 */
export async function loadTfjsNodeGpu(importer: Importer, noteIfMissing?: string): Promise<TfjsNodeModule> {
  let mod: unknown;
  try {
    mod = await importQuietly(importer, TFJS_NODE_GPU.packageName);
  } catch (e) {
    throw classifyLoadError(e, noteIfMissing);
  }
  // `import()` of a CommonJS package puts module.exports on `default`.
  const m = mod as { default?: TfjsNodeModule } & TfjsNodeModule;
  return m.default ?? m;
}

/**
 * tfjs-node brings its own copy of the tfjs union package, whose module bodies register the `cpu`
 * and `webgl` backends and kernels again in the shared registry: one "already registered" warning
 * per kernel, about 300 lines. tfjs prints its warnings only while its IS_TEST and PROD flags are
 * off, so IS_TEST is on for the duration of the import (and restored after), nothing else.
 */
export async function importQuietly(importer: Importer, specifier: string): Promise<unknown> {
  const env = tf.env();
  const was = env.getBool('IS_TEST');
  env.set('IS_TEST', true);
  try {
    return await importer(specifier);
  } finally {
    env.set('IS_TEST', was);
  }
}

/**
 * Maps what Node (or tfjs-node's own index) throws to Kiln's errors. The texts matched are the
 * real ones:
 * - ESM `import()` of an absent package: `ERR_MODULE_NOT_FOUND`, "Cannot find package '<name>' imported from …";
 *   CommonJS `require` inside the package: `MODULE_NOT_FOUND`, "Cannot find module '<name>'";
 *   under Vite/vitest, which resolve `import()` themselves: 'Could not resolve "<name>" imported by …', no code.
 * - tfjs-node's index when `lib/napi-v<N>/tfjs_binding.node` is absent (install script skipped or
 *   failed): "The Node.js native addon module (tfjs_binding.node) can not be found at path: <p>."
 * - The addon present but libtensorflow not next to it (`deps/lib`, found through the addon's
 *   rpath): `ERR_DLOPEN_FAILED`, "libtensorflow.so.2: cannot open shared object file: No such file or directory".
 */
export function classifyLoadError(e: unknown, noteIfMissing?: string): CudaBackendError {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const firstLine = message.split('\n')[0];
  const pkg = TFJS_NODE_GPU.packageName;

  const notFound = /Cannot find (?:package|module) '([^']+)'|Could not resolve "([^"]+)"/.exec(message);
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND' || notFound) {
    const missing = notFound?.[1] ?? notFound?.[2] ?? firstLine;
    if (missing === pkg) return new TfjsNodeGpuMissingError(noteIfMissing, e);
    return new TfjsNodeGpuIncompleteError(missing, e);
  }
  const binding = /native addon module \(tfjs_binding\.node\) can not be found at path: (.*?)\.\s/.exec(message + ' ');
  if (binding) return new LibtensorflowLoadError('binding-missing', `no ${binding[1]}`, e);
  if (err?.code === 'ERR_DLOPEN_FAILED' || /cannot open shared object file|Library not loaded|image not found/.test(message)) {
    const libMissing = /libtensorflow\S*: cannot open shared object file|Library not loaded: @rpath\/libtensorflow|image not found/.test(message);
    return new LibtensorflowLoadError(libMissing ? 'library-missing' : 'load-failed', firstLine, e);
  }
  return new LibtensorflowLoadError('load-failed', firstLine, e);
}
