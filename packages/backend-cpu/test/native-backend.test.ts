import { BackendRegistry, BackendUnavailableError, tf } from '@kiln/core';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { cpuBackend } from '../src/cpu-backend.js';
import { classifyTfjsNodeLoadError, cpuNativeBackend, TfjsNodeBackendConflictError, TfjsNodeIncompleteError, TfjsNodeLibtensorflowError, TfjsNodeMissingError } from '../src/native-backend.js';

const throwing = (e: Error & { code?: string }) => async () => {
  throw e;
};
const fakeTfjsNode = (fields: { isGPUPackage: boolean }) => async () => {
  // What tfjs-node's index does on import: register `tensorflow` in the process-wide registry.
  tf.registerBackend('tensorflow', () => Object.assign(new tf.KernelBackend(), fields, { binding: { TF_Version: '2.9.1' }, dispose() {} }), 3);
  return { default: { version: { 'tfjs-node': '4.22.0' } } };
};

// Where the real tfjs-node is installed it owns the 'tensorflow' backend name, so the tests that
// stand in a fake for it cannot run; the real-backend test at the end covers that machine.
const installed = (() => {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

afterEach(() => {
  if (!installed && tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
});

describe('cpuNativeBackend with tfjs-node absent or simulated', () => {
  beforeEach((ctx) => requireOrSkip(ctx, installed && '@tensorflow/tfjs-node is installed here, so it cannot be simulated', 'tfjs-node'));
  it('package not installed (the real import, here): unavailable with the npm command; the registry and init both say so', async () => {
    const p = cpuNativeBackend();
    const a = await p.availability!();
    expect(p.name).toBe('cpu-native');
    expect(p.priority).toBe(200);
    expect(a.reason).toBe('@tensorflow/tfjs-node is not installed');
    expect(a.install).toBe('npm install @tensorflow/tfjs-node@^4.22.0 (its install step downloads libtensorflow 2.9.1; offline or behind a mirror, see docs/backends.md ("cpu-native"))');
    const e = await p.init().catch((x) => x);
    expect(e).toBeInstanceOf(TfjsNodeMissingError);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e.failure).toBe('package-missing');
    const viaRegistry = await new BackendRegistry([p]).use('cpu-native').catch((x) => x);
    expect(viaRegistry.message).toMatch(/^backend 'cpu-native' is not available: @tensorflow\/tfjs-node is not installed\n {2}where: cpu-native\n {2}fix: npm install @tensorflow\/tfjs-node@\^4\.22\.0/);
  });

  it("Node's own not-found errors (ESM and CommonJS) mean not installed; a missing dependency means an incomplete install", () => {
    expect(classifyTfjsNodeLoadError(Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node' imported from /app/x.js"), { code: 'ERR_MODULE_NOT_FOUND' }))).toBeInstanceOf(TfjsNodeMissingError);
    expect(classifyTfjsNodeLoadError(Object.assign(new Error("Cannot find module '@tensorflow/tfjs-node'\nRequire stack:\n- /app/x.cjs"), { code: 'MODULE_NOT_FOUND' }))).toBeInstanceOf(TfjsNodeMissingError);
    const dep = classifyTfjsNodeLoadError(Object.assign(new Error("Cannot find module '@mapbox/node-pre-gyp'\nRequire stack:\n- /app/node_modules/@tensorflow/tfjs-node/dist/index.js"), { code: 'MODULE_NOT_FOUND' }));
    expect(dep).toBeInstanceOf(TfjsNodeIncompleteError);
    expect(dep.reason).toContain("'@mapbox/node-pre-gyp'");
  });

  it('native addon never downloaded: binding-missing, with the rebuild and mirror settings', async () => {
    const text =
      'The Node.js native addon module (tfjs_binding.node) can not be found at path: /app/node_modules/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node. \n' +
      "Please run command 'npm rebuild @tensorflow/tfjs-node --build-addon-from-source' to rebuild the native addon module. \nIf you have problem with building the addon module, please check https://github.com/tensorflow/tfjs/blob/master/tfjs-node/WINDOWS_TROUBLESHOOTING.md or file an issue.";
    const e = await cpuNativeBackend({ importer: throwing(new Error(text)) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(TfjsNodeLibtensorflowError);
    expect(e.problem).toBe('binding-missing');
    expect(e.reason).toContain('no /app/node_modules/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node');
    expect(e.fix).toMatch(/npm rebuild @tensorflow\/tfjs-node/);
    expect(e.fix).toMatch(/TFJS_NODE_CDN_STORAGE/);
    expect(e.fix).toMatch(/libtensorflow-cpu-linux-x86_64-2\.9\.1\.tar\.gz into node_modules\/@tensorflow\/tfjs-node\/deps\//);
  });

  it('libtensorflow missing: the ERR_DLOPEN_FAILED Node really raises', async () => {
    let real: Error | undefined;
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, '/nonexistent-kiln-test/libtensorflow.so.2');
    } catch (e) {
      real = e as Error;
    }
    expect((real as Error & { code: string }).code).toBe('ERR_DLOPEN_FAILED');
    const p = cpuNativeBackend({ importer: throwing(real!) });
    expect(await p.isAvailable()).toBe(false);
    const e = await p.init().catch((x) => x);
    expect(e).toBeInstanceOf(TfjsNodeLibtensorflowError);
    expect(e.problem).toBe('library-missing');
  });

  it("a tfjs-core copy that did not share Kiln's registry (no 'tensorflow' factory after the import) is caught", async () => {
    const e = await cpuNativeBackend({ importer: async () => ({}) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(TfjsNodeLibtensorflowError);
    expect(e.reason).toMatch(/registered no 'tensorflow' backend in Kiln's engine/);
  });

  it("the 'tensorflow' backend owned by tfjs-node-gpu: TfjsNodeBackendConflictError", async () => {
    const e = await cpuNativeBackend({ importer: fakeTfjsNode({ isGPUPackage: true }) }).init().catch((x) => x);
    expect(e).toBeInstanceOf(TfjsNodeBackendConflictError);
    expect(e.fix).toMatch(/--backend cuda/);
  });

  it('loaded: selects tensorflow and describes libtensorflow and the package version', async () => {
    const p = cpuNativeBackend({ importer: fakeTfjsNode({ isGPUPackage: false }) });
    const choice = await new BackendRegistry([p, cpuBackend()]).use('auto');
    expect(choice.name).toBe('cpu-native');
    expect(tf.getBackend()).toBe('tensorflow');
    expect(p.describe()).toMatchObject({ name: 'cpu-native', tfjsBackend: 'tensorflow', device: 'CPU (TensorFlow 2.9.1 native kernels)', details: { libtensorflow: '2.9.1', '@tensorflow/tfjs-node': '4.22.0' } });
    await cpuBackend().init(); // leave the reference backend current for the tests that follow
  });
});

// The real backend: only where @tensorflow/tfjs-node is installed and libtensorflow loads.
const real = cpuNativeBackend();
const realAvailability = await real.availability!();

describe('cpu-native on the real tfjs-node', () => {
  it('conv gradients match the reference cpu backend, and a small CNN trains', async (ctx) => {
    requireOrSkip(ctx, !realAvailability.available && `cpu-native unavailable: ${realAvailability.reason}`, 'tfjs-node');
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 11));
    const k = tf.tidy(() => tf.randomNormal([3, 3, 3, 4], 0, 0.3, 'float32', 12));
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))));
    const grads = async () => {
      const gs = tf.grads(f)([x, k]);
      const out = await Promise.all(gs.map((g) => g.data()));
      gs.forEach((g) => g.dispose());
      return out;
    };
    await cpuBackend().init();
    const ref = await grads();
    await real.init();
    expect(tf.getBackend()).toBe('tensorflow');
    console.log('[backend-cpu]', JSON.stringify(real.describe()));
    const got = await grads();
    for (let i = 0; i < 2; i++) ref[i].forEach((v, j) => expect(got[i][j]).toBeCloseTo(v, 3));

    const before = tf.memory().numTensors;
    const n = 32;
    const xs = tf.tidy(() => tf.randomNormal([n, 6, 6, 3], 0, 1, 'float32', 13));
    // Labels from a fixed random linear rule, so a tiny net can fit them.
    const ys = tf.tidy(() => tf.oneHot(tf.cast(tf.greater(tf.sum(tf.mul(xs, tf.randomNormal([1, 6, 6, 3], 0, 1, 'float32', 14)), [1, 2, 3]), 0), 'int32'), 2));
    const k1 = tf.tidy(() => tf.variable(tf.randomNormal([3, 3, 3, 4], 0, 0.3, 'float32', 15)));
    const w2 = tf.tidy(() => tf.variable(tf.randomNormal([6 * 6 * 4, 2], 0, 0.05, 'float32', 16)));
    const loss = () => tf.losses.softmaxCrossEntropy(ys, tf.matMul(tf.conv2d(xs as tf.Tensor4D, k1 as tf.Tensor4D, 1, 'same').reshape([n, -1]), w2)) as tf.Scalar;
    const first = tf.tidy(() => loss().dataSync()[0]);
    const opt = tf.train.sgd(0.1);
    for (let step = 0; step < 40; step++) tf.tidy(() => void opt.minimize(loss));
    const last = tf.tidy(() => loss().dataSync()[0]);
    expect(last).toBeLessThan(first * 0.5);
    [xs, ys, k1, w2].forEach((t) => t.dispose());
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    [x, k].forEach((t) => t.dispose());
  });
});
