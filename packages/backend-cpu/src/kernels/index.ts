/**
 * The training kernels tfjs's WASM backend lacks, registered for backend 'wasm': the convolution
 * filter gradient and depthwise gradients written for it, a faster convolution input gradient,
 * then a bridge to the reference CPU kernels for everything else the CPU backend has.
 */
import { tf } from '@kiln/core';
// The bridge compares against the full WASM kernel list, so that list must be registered first.
import '@tensorflow/tfjs-backend-wasm/dist/register_all_kernels.js';
import { fastBatchMatMulConfig } from './batch-mat-mul.js';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './conv2d-backprop-input.js';
import { depthwiseConv2dNativeBackpropFilterConfig, depthwiseConv2dNativeBackpropInputConfig } from './depthwise-conv2d-backprop.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { leadingMeanConfig, leadingSumConfig } from './leading-axes-reduce.js';
import { broadcastTileConfig } from './broadcast-tile.js';
import { aliasIdentityConfig } from './identity.js';
import { registerCpuBridgeKernels } from './cpu-bridge.js';
import { fusedTrainingConfigs } from './fused-training.js';
import { maxPoolArgmaxConfigs } from './max-pool-argmax.js';
import { dnnlBatchNormConfigs, dnnlKernelConfigs, dnnlOptimizerConfigs, dnnlBiasReluGradConfig, loadDnnl } from './dnnl.js';

/** Kernels tfjs's WASM backend lacks. */
const missing: tf.KernelConfig[] = [
  conv2DBackpropFilterConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
];

/** Kernels tfjs's WASM backend has, replaced by faster ones (see each file for the numbers). */
const replacements: tf.KernelConfig[] = [
  fastBatchMatMulConfig,
  conv2DBackpropInputConfig,
  maxPoolGradConfig,
  leadingSumConfig,
  leadingMeanConfig,
  broadcastTileConfig,
  aliasIdentityConfig,
];

/**
 * Registers Kiln's WASM training kernels. Idempotent; call before the 'wasm' backend is first
 * initialised (as `wasmBackend().init()` does) or at any time after.
 */
/**
 * tfjs-backend-wasm 4.22 kernels that compute wrong results; the reference CPU kernel runs in their
 * place. Conv3DBackpropInputV2 returns input gradients off by up to ~7 against PyTorch and the cpu
 * backend, and Conv3DBackpropFilterV2 is wrong for strides > 1 (test/bridged-kernels.test.ts fails
 * without this list and passes with it).
 */
const broken = ['Conv3DBackpropInputV2', 'Conv3DBackpropFilterV2'];

/** Options of `registerWasmTrainingKernels`. */
export interface WasmKernelOptions {
  /** Run convolutions through oneDNN when Kiln's native addon is built (Node only). Default true. */
  dnnl?: boolean;
}

/** Registers Kiln's WASM training kernels (and the oneDNN ones when the addon is loaded); idempotent. */
export function registerWasmTrainingKernels(options: WasmKernelOptions = {}): void {
  for (const k of missing) {
    if (tf.getKernel(k.kernelName, 'wasm') == null) tf.registerKernel(k);
  }
  for (const k of replacements) {
    const current = tf.getKernel(k.kernelName, 'wasm');
    if (current?.kernelFunc === k.kernelFunc) continue;
    if (current) tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel(k);
  }
  // Kiln's own fused kernels (new names, so nothing to wrap): present whether or not oneDNN is.
  for (const k of [...fusedTrainingConfigs, ...maxPoolArgmaxConfigs]) {
    if (tf.getKernel(k.kernelName, 'wasm') == null) tf.registerKernel(k);
  }
  registerCpuBridgeKernels(broken);
  // oneDNN kernels on top, each falling back to the kernel it wraps; or, when turned off, the
  // kernels they wrapped put back.
  dnnlActive = options.dnnl !== false && loadDnnl().loaded;
  for (const k of dnnlKernelConfigs(baseKernel)) {
    const current = tf.getKernel(k.kernelName, 'wasm')!;
    const base = baseKernel(k.kernelName);
    tf.unregisterKernel(k.kernelName, 'wasm');
    if (dnnlActive) {
      unwrapped.set(k.kernelFunc, base);
      // Keep the wrapped kernel's setup (tfjs's WASM kernels bind their C functions in it).
      tf.registerKernel({ ...k, setupFunc: current.setupFunc, disposeFunc: current.disposeFunc });
    } else {
      tf.registerKernel({ ...current, kernelFunc: base });
    }
  }
  // Fused kernels that wrap nothing: present exactly while oneDNN is active.
  for (const k of [...dnnlBatchNormConfigs(), ...dnnlOptimizerConfigs(), dnnlBiasReluGradConfig()]) {
    if (tf.getKernel(k.kernelName, 'wasm')) tf.unregisterKernel(k.kernelName, 'wasm');
    if (dnnlActive) tf.registerKernel(k);
  }
}

let dnnlActive = false;

/** Whether the last registration put the oneDNN kernels in place. */
export function dnnlKernelsActive(): boolean {
  return dnnlActive;
}

/** The kernel registered for `name` on 'wasm', seen through any oneDNN wrapper around it. */
function baseKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`kiln: the wasm backend has no ${name} kernel to fall back to`);
  return unwrapped.get(k.kernelFunc) ?? k.kernelFunc;
}

/** oneDNN kernel → the kernel it wraps. */
const unwrapped = new Map<tf.KernelFunc, tf.KernelFunc>();
