import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tf } from '@kiln/core';
import { describe, expect, it, vi } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { LibtensorflowLoadError, TfjsNodeGpuIncompleteError, TfjsNodeGpuMissingError } from '../src/errors.js';
import { classifyLoadError, importModule, importQuietly, loadTfjsNodeGpu } from '../src/load-tfjs-node-gpu.js';

const require = createRequire(import.meta.url);
const installed = (() => {
  try {
    require.resolve('@tensorflow/tfjs-node-gpu');
    return true;
  } catch {
    return false;
  }
})();

/** What Node itself throws for `import('@tensorflow/tfjs-node-gpu')` from a plain ESM script here. */
function nodeEsmImportError(): { code: string; message: string } {
  const script = "import('@tensorflow/tfjs-node-gpu').then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))";
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: __dirname });
  return JSON.parse(r.stdout);
}

describe('classifyLoadError', () => {
  it('package absent: the errors Node, require and vitest really throw all mean "not installed"', async (ctx) => {
    requireOrSkip(ctx, installed && '@tensorflow/tfjs-node-gpu is installed here, so its absence cannot be observed', 'tfjs-node-gpu');
    const esm = nodeEsmImportError();
    expect(esm.code).toBe('ERR_MODULE_NOT_FOUND');
    expect(classifyLoadError(Object.assign(new Error(esm.message), { code: esm.code }))).toBeInstanceOf(TfjsNodeGpuMissingError);
    let cjs: unknown;
    try {
      require('@tensorflow/tfjs-node-gpu');
    } catch (e) {
      cjs = e;
    }
    expect((cjs as { code: string }).code).toBe('MODULE_NOT_FOUND');
    expect(classifyLoadError(cjs)).toBeInstanceOf(TfjsNodeGpuMissingError);
    // Under vitest the import goes through Vite's resolver, which words it differently and sets no code.
    const viaVite = await loadTfjsNodeGpu(importModule).catch((e) => e);
    expect(viaVite).toBeInstanceOf(TfjsNodeGpuMissingError);
    expect(viaVite.fix).toBe('npm install @tensorflow/tfjs-node-gpu@^4.22.0 (its install step downloads libtensorflow 2.9.1 for GPU; offline or behind a mirror, see docs/backends.md ("cuda"))');
    expect(viaVite.cause).toBeDefined();
  });

  it('a dependency of the package missing is an incomplete install, not a missing package', () => {
    const e = classifyLoadError(Object.assign(new Error("Cannot find module '@tensorflow/tfjs'\nRequire stack:\n- /x/node_modules/@tensorflow/tfjs-node-gpu/dist/index.js"), { code: 'MODULE_NOT_FOUND' }));
    expect(e).toBeInstanceOf(TfjsNodeGpuIncompleteError);
    expect(e.reason).toBe("@tensorflow/tfjs-node-gpu is installed but its dependency '@tensorflow/tfjs' cannot be found");
  });

  it("the native addon absent (install script skipped or its download failed): tfjs-node's own message", () => {
    // Built exactly as tfjs-node-gpu 4.22.0's dist/index.js builds it.
    const path = '/app/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node';
    const text =
      'The Node.js native addon module (tfjs_binding.node) can not be found at path: ' + path + '. \nPlease run command ' +
      "'npm rebuild @tensorflow/tfjs-node-gpu --build-addon-from-source' to rebuild the native addon module. \nIf you have problem with building the addon module, please check https://github.com/tensorflow/tfjs/blob/master/tfjs-node/WINDOWS_TROUBLESHOOTING.md or file an issue.";
    const e = classifyLoadError(new Error(text)) as LibtensorflowLoadError;
    expect(e).toBeInstanceOf(LibtensorflowLoadError);
    expect(e.problem).toBe('binding-missing');
    expect(e.reason).toContain(`no ${path}`);
    expect(e.fix).toMatch(/npm rebuild @tensorflow\/tfjs-node-gpu/);
    expect(e.fix).toMatch(/TFJS_NODE_CDN_STORAGE/);
    expect(e.fix).toMatch(/deps\//);
  });

  it('libtensorflow missing next to the addon: the dlopen error Node really raises', () => {
    let real: unknown;
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, '/nonexistent-kiln-test/libtensorflow.so.2');
    } catch (e) {
      real = e;
    }
    expect((real as { code: string }).code).toBe('ERR_DLOPEN_FAILED');
    const e = classifyLoadError(real) as LibtensorflowLoadError;
    expect(e.problem).toBe('library-missing');
    expect(e.reason).toContain('cannot open shared object file');
    // The text as it appears when the addon's own dependency is missing (no path, just the soname).
    const dep = classifyLoadError(Object.assign(new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory'), { code: 'ERR_DLOPEN_FAILED' })) as LibtensorflowLoadError;
    expect(dep.problem).toBe('library-missing');
    expect(dep.message).toContain("@tensorflow/tfjs-node-gpu's native addon cannot find libtensorflow 2.9.1 (libtensorflow.so.2: cannot open shared object file");
  });

  it('a libtensorflow that is there but does not load is a load failure with the loader\'s words', () => {
    const e = classifyLoadError(Object.assign(new Error("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.27' not found (required by /app/deps/lib/libtensorflow.so.2)"), { code: 'ERR_DLOPEN_FAILED' })) as LibtensorflowLoadError;
    expect(e.problem).toBe('load-failed');
    expect(e.reason).toContain("GLIBC_2.27' not found");
  });
});

describe('importQuietly', () => {
  it("mutes tfjs's duplicate-registration warnings during the import only, and restores the flag even when the import throws", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const register = () => tf.registerBackend('kiln-dup-test', () => new tf.KernelBackend());
      register();
      await importQuietly(async () => register(), 'x'); // a second copy of tfjs re-registering, as tfjs-node's does
      expect(warn).not.toHaveBeenCalled();
      expect(tf.env().getBool('IS_TEST')).toBe(false);
      await expect(importQuietly(async () => Promise.reject(new Error('boom')), 'x')).rejects.toThrow('boom');
      expect(tf.env().getBool('IS_TEST')).toBe(false);
      register(); // outside the import tfjs warns as usual
      expect(warn).toHaveBeenCalledWith('kiln-dup-test backend was already registered. Reusing existing backend factory.');
    } finally {
      warn.mockRestore();
      tf.removeBackend('kiln-dup-test');
    }
  });
});
