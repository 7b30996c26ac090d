/**
 * Convolution, max-pool gradient and (fused) matrix-product kernels for the WASM backend, computed by
 * oneDNN through Kiln's native addon (`native/kiln_dnnl.cc`, built into
 * `dist/native/kiln_dnnl.node` when Debian's `libdnnl-dev` is installed). oneDNN reads and writes the tensors in place on the WebAssembly heap, so nothing is
 * copied; it vectorises with the CPU's full width (AVX2/AVX-512 with FMA, where WASM SIMD has 128
 * bits and no FMA) and runs on its own OpenMP pool. Node only; in browsers, or where the addon is
 * absent, the WASM kernels run as before.
 *
 * Each kernel here handles NHWC float32 tensors and hands anything else (NCHW, other dtypes,
 * activations oneDNN is not asked to fuse, broadcasting it does not do) to the kernel it replaced.
 */
import { tf, nodeBuiltin, MAX_POOL_ARGMAX_GRAD_KERNEL, MAX_POOL_ARGMAX_KERNEL, BIAS_RELU_GRAD_KERNEL, ADAM_UPDATE_KERNEL, ADAM_UPDATE_MULTI_KERNEL, BATCH_NORM_TRAINING_GRAD_KERNEL, BATCH_NORM_TRAINING_KERNEL, SGD_UPDATE_KERNEL, ShapeMismatchError } from '@kiln/core';
import { f32View, type BackendWasm, type WasmKernelArgs } from './wasm-heap.js';
import { leadingReduction, type ReduceAttrs } from './leading-axes-reduce.js';
import { maxPoolArgmaxGeometry, maxPoolArgmaxGradShapes, type MaxPoolArgmaxAttrs } from './max-pool-argmax.js';

/** What the native addon exports. */
export interface DnnlAddon {
  /** 2-D convolution (optionally + bias and ReLU) into `y`; `geometry` as built by `geometry()` below. */
  conv2dForward(geometry: Int32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, relu: boolean): void;
  /** Gradient of a convolution with respect to its input, into `dx`. */
  conv2dBackwardData(geometry: Int32Array, dy: Float32Array, w: Float32Array, dx: Float32Array): void;
  /** Gradient of a convolution with respect to its filter, into `dw`. */
  conv2dBackwardFilter(geometry: Int32Array, x: Float32Array, dy: Float32Array, dw: Float32Array): void;
  /** Gradient of a 2-D max pool with respect to its input, into `dx`. */
  maxPoolBackward(geometry: Int32Array, x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** @kiln/core's `MAX_POOL_ARGMAX_KERNEL` into `y` and `argmax`; `geometry` as `maxPoolArgmaxGeometry()` checks it. */
  maxPoolArgmax(geometry: Int32Array, x: Float32Array, y: Float32Array, argmax: Int32Array): void;
  /** Its gradient: `dx` zeroed, then each of the `n` images' `dy` added at its `argmax`. */
  maxPoolArgmaxGrad(n: number, dy: Float32Array, argmax: Int32Array, dx: Float32Array): void;
  /**
   * Batched matrix product `c = a · b` (either side transposed or broadcast over the batch), plus
   * a bias over the last axis and a ReLU when given.
   */
  matMul(geometry: Int32Array, a: Float32Array, b: Float32Array, bias: Float32Array | null, c: Float32Array, relu: boolean): void;
  /** Training-mode batch norm: normalises `x` with its batch statistics into `y`, returning them in `mean` and `variance`. */
  batchNormForward(geometry: Int32Array, epsilon: number, x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, mean: Float32Array, variance: Float32Array): void;
  /** Inference-mode batch norm: normalises `x` with the given statistics into `y`. */
  batchNormInference(geometry: Int32Array, epsilon: number, x: Float32Array, mean: Float32Array, variance: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array): void;
  /** Gradients of training-mode batch norm with respect to `x`, `gamma` and `beta`. */
  batchNormBackward(
    geometry: Int32Array, epsilon: number, x: Float32Array, dy: Float32Array, mean: Float32Array, variance: Float32Array,
    gamma: Float32Array, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array,
  ): void;
  /**
   * One Adam update of one parameter into the `*Out` arrays. `hyper`: [η/(1−β₁ᵗ), β₁, 1−β₁, β₂,
   * 1−β₂, √(1−β₂ᵗ), ε, decay, mode], mode 0 without weight decay, 1 for L2 (decay = λ), 2 for
   * decoupled (decay = 1 − ηλ). `vMax`/`vMaxOut` (AMSGrad) are null without it.
   */
  adamUpdate(
    hyper: Float64Array, p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vMax: Float32Array | null,
    pOut: Float32Array, mOut: Float32Array, vOut: Float32Array, vMaxOut: Float32Array | null,
  ): void;
  /** One SGD update; `hyper`: [η, λ, μ, 1−τ, nesterov, first]; the buffers are null without momentum. */
  sgdUpdate(hyper: Float64Array, p: Float32Array, g: Float32Array, buf: Float32Array | null, pOut: Float32Array, bufOut: Float32Array | null): void;
  /** Gradients of y = relu(z + b) from the output: `dz` = `dy` where `y` > 0, else 0; `db` = `dz` summed over rows of `db.length`. */
  biasReluGrad(dy: Float32Array, y: Float32Array, dz: Float32Array, db: Float32Array): void;
  /** `out[c]` = sum (or mean) over `rows` rows of `x` viewed as [rows, out.length], in double precision. */
  sumLeading(rows: number, x: Float32Array, out: Float32Array, mean: boolean): void;
  /** Size of oneDNN's OpenMP thread pool. */
  setNumThreads(n: number): void;
  /**
   * One line per cached convolution primitive, `<forward|backward_data|backward_weights> <geometry>:
   * <oneDNN implementation>` (`jit_wino_4x3:avx512_core` for Winograd, `brgconv…`/`jit…` for direct),
   * so that tests and benchmark tools can tell which algorithm ran.
   */
  convolutionImplementations(): string[];
  /** What the loaded library is and runs on. */
  info(): {
    /** oneDNN's version (`2.6.3`). */
    version: string;
    /** The instruction set oneDNN dispatches to (`avx2`, `avx512_core`, …). */
    cpuIsa: string;
    /** Threads in its pool. */
    maxThreads: number;
  };
}

/** Why the addon is off, when it is: `deliberate` when the user turned it off or the runtime is not Node. */
export type DnnlStatus =
  | {
      /** The addon loaded. */
      loaded: true;
      /** Its functions. */
      addon: DnnlAddon;
      /** The file it was loaded from. */
      path: string;
    }
  | {
      /** The addon is off. */
      loaded: false;
      /** Why, in one sentence. */
      reason: string;
      /** True when the user turned it off or this is not Node: nothing to report then. */
      deliberate?: boolean;
    };

/** The commands that build the addon where it was not built: oneDNN's headers, a compiler, then the build. */
export const DNNL_ENABLE_COMMAND = 'apt-get install libdnnl-dev g++ && npx kiln-build-dnnl';

let status: DnnlStatus | undefined;

/**
 * Loads the addon once. `KILN_DNNL=0` turns it off; `KILN_DNNL_ADDON` names another build of it.
 * The reason it did not load is kept for `describe()` and the benchmark harness.
 */
export function loadDnnl(): DnnlStatus {
  if (status) return status;
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const module = nodeBuiltin<typeof import('node:module')>('module');
  const path = nodeBuiltin<typeof import('node:path')>('path');
  const fs = nodeBuiltin<typeof import('node:fs')>('fs');
  if (!proc || !module || !path || !fs) return (status = { loaded: false, reason: 'not running in Node', deliberate: true });
  if (proc.env?.KILN_DNNL === '0') return (status = { loaded: false, reason: 'turned off by KILN_DNNL=0', deliberate: true });
  const { createRequire } = module;
  const here = typeof __filename === 'string' ? __filename : import.meta.url;
  const req = createRequire(here);
  let file: string;
  if (proc.env?.KILN_DNNL_ADDON) {
    file = proc.env.KILN_DNNL_ADDON;
  } else {
    try {
      file = path.join(path.dirname(req.resolve('@kiln/backend-cpu/package.json')), 'dist', 'native', 'kiln_dnnl.node');
    } catch (e) {
      return (status = { loaded: false, reason: `cannot locate @kiln/backend-cpu (${(e as Error).message})` });
    }
  }
  if (!fs.existsSync(file)) {
    // native/build.mjs leaves the reason it skipped beside the addon's place.
    const skipped = file.replace(/\.node$/, '.skipped');
    // No note: the install script never ran (npm 11 runs a dependency's install script only once
    // the project allows it).
    const why = fs.existsSync(skipped)
      ? fs.readFileSync(skipped, 'utf8').trim()
      : 'its install script did not run (allow it with: npm install-scripts approve @kiln/backend-cpu)';
    return (status = { loaded: false, reason: `the addon was not built: ${why}` });
  }
  // libgomp reads its wait policy when it loads. Idle OpenMP threads that spin hold cores other
  // work needs (measured: several times slower on a busy 2-core machine), so they sleep unless the
  // user chose otherwise.
  if (proc.env && proc.env.OMP_WAIT_POLICY === undefined) proc.env.OMP_WAIT_POLICY = 'passive';
  try {
    return (status = { loaded: true, addon: req(file) as DnnlAddon, path: file });
  } catch (e) {
    return (status = { loaded: false, reason: `${file} failed to load: ${(e as Error).message}` });
  }
}

/**
 * The line a user sees once when the WASM backend starts without oneDNN in Node: that it is off,
 * why, and the command that turns it on. Nothing when it was turned off on purpose. Installing
 * @kiln/backend-cpu builds the addon where it can and stays quiet where it cannot (npm hides
 * install output), so this line is where a user learns that training runs on the slower kernels.
 */
export function dnnlOffNotice(s: DnnlStatus): string | undefined {
  if (s.loaded || s.deliberate) return undefined;
  return `kiln: oneDNN kernels are off (${s.reason}); WASM runs the convolutions, more slowly. Enable: ${DNNL_ENABLE_COMMAND} (KILN_DNNL=0 silences this)`;
}

type Conv2DAttrs = {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

/** The geometry the addon takes: [N, IH, IW, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, PT, PL]. */
function geometry(c: tf.backend_util.Conv2DInfo): Int32Array | undefined {
  // The bottom/right padding is derived in the addon from the output size; it comes out negative
  // when a strided window never reaches the last rows or columns, which oneDNN accepts.
  if (c.padInfo.top < 0 || c.padInfo.left < 0) return undefined;
  if (c.outHeight < 1 || c.outWidth < 1 || c.batchSize < 1) return undefined;
  return Int32Array.of(
    c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels,
    c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.dilationHeight, c.dilationWidth,
    c.padInfo.top, c.padInfo.left,
  );
}

const float32 = (...ts: (tf.TensorInfo | undefined)[]) => ts.every((t) => t === undefined || t.dtype === 'float32');

const counts = new Map<string, { native: number; fallback: number }>();

/**
 * How many calls of each wrapped kernel oneDNN ran, and how many it handed back to the kernel it
 * wraps (NCHW, other dtypes, unsupported activations or broadcasts), since the process started.
 */
export function dnnlCallCounts(): Record<
  string,
  {
    /** Calls oneDNN ran. */
    native: number;
    /** Calls handed back to the wrapped kernel. */
    fallback: number;
  }
> {
  return Object.fromEntries([...counts].map(([k, v]) => [k, { ...v }]));
}

/** Wraps `fallback` (the kernel being replaced) so that oneDNN runs whenever `native` accepts the call. */
function withFallback(kernelName: string, fallback: tf.KernelFunc, native: (args: WasmKernelArgs<any>, addon: DnnlAddon) => tf.TensorInfo | tf.TensorInfo[] | undefined): tf.KernelConfig {
  let count = counts.get(kernelName);
  if (!count) counts.set(kernelName, (count = { native: 0, fallback: 0 }));
  const c = count;
  const kernelFunc = ((args: WasmKernelArgs<any>) => {
    const s = loadDnnl();
    const out = s.loaded ? native(args, s.addon) : undefined;
    if (out) {
      c.native++;
      return out;
    }
    c.fallback++;
    return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
  }) as unknown as tf.KernelFunc;
  return { kernelName, backendName: 'wasm', kernelFunc };
}

function convInfo(xShape: number[], filterShape: number[], attrs: Conv2DAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
}

function forward(backend: BackendWasm, addon: DnnlAddon, x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined, relu: boolean, attrs: Conv2DAttrs): tf.TensorInfo | undefined {
  if (attrs.dataFormat === 'NCHW' || !float32(x, filter, bias)) return undefined;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== filter.shape[3])) return undefined;
  const c = convInfo(x.shape, filter.shape, attrs);
  const g = geometry(c);
  if (!g) return undefined;
  const y = backend.makeOutput(c.outShape, 'float32');
  addon.conv2dForward(g, f32View(backend, x), f32View(backend, filter), bias ? f32View(backend, bias) : null, f32View(backend, y), relu);
  return y;
}

/** Batch sizes of a BatchMatMul that oneDNN can run: equal, or one side 1 (broadcast). */
function matMulGeometry(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): { g: Int32Array; out: number[] } | undefined {
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const [M, K] = transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [K2, N] = transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (K !== K2 || M < 1 || K < 1 || N < 1) return undefined;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const BA = batchA.reduce((p, d) => p * d, 1);
  const BB = batchB.reduce((p, d) => p * d, 1);
  let batch: number[];
  if (BA === BB && batchA.join() === batchB.join()) batch = batchA;
  else if (BA === 1) batch = batchB.length >= batchA.length ? batchB : batchA;
  else if (BB === 1) batch = batchA.length >= batchB.length ? batchA : batchB;
  else return undefined;
  return { g: Int32Array.of(BA, BB, M, K, N, transposeA ? 1 : 0, transposeB ? 1 : 0), out: [...batch, M, N] };
}

/** A (fused) matrix product through oneDNN; bias only as one value per output column. */
function matMul(
  backend: BackendWasm, addon: DnnlAddon, a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | undefined, relu: boolean,
  { transposeA, transposeB }: { transposeA: boolean; transposeB: boolean },
): tf.TensorInfo | undefined {
  if (!float32(a, b, bias)) return undefined;
  const m = matMulGeometry(a, b, transposeA, transposeB);
  if (!m) return undefined;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== m.out[m.out.length - 1])) return undefined;
  const out = backend.makeOutput(m.out, 'float32');
  addon.matMul(m.g, f32View(backend, a), f32View(backend, b), bias ? f32View(backend, bias) : null, f32View(backend, out), relu);
  return out;
}

/**
 * `Sum`/`Mean` over leading axes (bias gradients, batch statistics) as one native loop; the
 * JavaScript kernel it wraps (leading-axes-reduce.ts) does the same sums in the same order.
 */
function sumLeading(mean: boolean) {
  return ({ inputs, backend, attrs }: WasmKernelArgs<ReduceAttrs>, addon: DnnlAddon): tf.TensorInfo | undefined => {
    const { x } = inputs;
    const r = leadingReduction(x, attrs);
    if (!r) return undefined;
    const out = backend.makeOutput(r.outShape, 'float32');
    addon.sumLeading(r.rows, f32View(backend, x), f32View(backend, out), mean);
    return out;
  };
}

/** Builds the oneDNN kernels, each falling back to the kernel registered for 'wasm' before it. */
export function dnnlKernelConfigs(previous: (name: string) => tf.KernelFunc): tf.KernelConfig[] {
  return [
    withFallback(tf.Sum, previous(tf.Sum), sumLeading(false)),
    withFallback(tf.Mean, previous(tf.Mean), sumLeading(true)),
    withFallback(tf.Conv2D, previous(tf.Conv2D), ({ inputs, backend, attrs }, addon) =>
      forward(backend, addon, inputs.x, inputs.filter, undefined, false, attrs as Conv2DAttrs)),
    withFallback(tf.FusedConv2D, previous(tf.FusedConv2D), ({ inputs, backend, attrs }, addon) => {
      const { activation } = attrs as { activation?: string };
      if (activation !== undefined && activation !== 'linear' && activation !== 'relu') return undefined;
      if (inputs.preluActivationWeights) return undefined;
      return forward(backend, addon, inputs.x, inputs.filter, inputs.bias, activation === 'relu', attrs as Conv2DAttrs);
    }),
    withFallback(tf.Conv2DBackpropInput, previous(tf.Conv2DBackpropInput), ({ inputs, backend, attrs }, addon) => {
      const { dy, filter } = inputs;
      const a = attrs as Conv2DAttrs & { inputShape: [number, number, number, number] };
      if (a.dataFormat === 'NCHW' || !float32(dy, filter)) return undefined;
      const g = geometry(convInfo(a.inputShape, filter.shape, a));
      if (!g) return undefined;
      const dx = backend.makeOutput(a.inputShape, 'float32');
      addon.conv2dBackwardData(g, f32View(backend, dy), f32View(backend, filter), f32View(backend, dx));
      return dx;
    }),
    withFallback(tf.Conv2DBackpropFilter, previous(tf.Conv2DBackpropFilter), ({ inputs, backend, attrs }, addon) => {
      const { x, dy } = inputs;
      const a = attrs as Conv2DAttrs & { filterShape: [number, number, number, number] };
      if (a.dataFormat === 'NCHW' || !float32(x, dy)) return undefined;
      const g = geometry(convInfo(x.shape, a.filterShape, a));
      if (!g) return undefined;
      const dw = backend.makeOutput(a.filterShape, 'float32');
      addon.conv2dBackwardFilter(g, f32View(backend, x), f32View(backend, dy), f32View(backend, dw));
      return dw;
    }),
    withFallback(tf.MaxPoolGrad, previous(tf.MaxPoolGrad), ({ inputs, backend, attrs }, addon) => {
      const { dy, input } = inputs;
      const a = attrs as { filterSize: [number, number] | number; strides: [number, number] | number; pad: Conv2DAttrs['pad']; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
      if (!float32(dy, input) || input.shape.length !== 4) return undefined;
      const c = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
      if (c.padInfo.top < 0 || c.padInfo.left < 0 || c.outHeight < 1 || c.outWidth < 1) return undefined;
      const g = Int32Array.of(c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth,
        c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.padInfo.top, c.padInfo.left);
      const dx = backend.makeOutput(input.shape, 'float32');
      addon.maxPoolBackward(g, f32View(backend, input), f32View(backend, dy), f32View(backend, dx));
      return dx;
    }),
    // The same loops as the JavaScript kernels they wrap (max-pool-argmax.ts), in C++.
    withFallback(MAX_POOL_ARGMAX_KERNEL, previous(MAX_POOL_ARGMAX_KERNEL), ({ inputs, backend, attrs }, addon) => {
      const { x } = inputs;
      const g = maxPoolArgmaxGeometry(x, attrs as MaxPoolArgmaxAttrs);
      const shape = [g[0], g[4], g[5], g[3]];
      const y = backend.makeOutput(shape, 'float32');
      const argmax = backend.makeOutput(shape, 'int32');
      addon.maxPoolArgmax(g, f32View(backend, x), f32View(backend, y), backend.typedArrayFromHeap(argmax) as Int32Array);
      return [y, argmax];
    }),
    withFallback(MAX_POOL_ARGMAX_GRAD_KERNEL, previous(MAX_POOL_ARGMAX_GRAD_KERNEL), ({ inputs, backend, attrs }, addon) => {
      const { dy, argmax } = inputs;
      const { inputShape } = attrs as { inputShape: number[] };
      const [n] = maxPoolArgmaxGradShapes(dy, argmax, inputShape);
      const dx = backend.makeOutput(inputShape, 'float32');
      addon.maxPoolArgmaxGrad(n, f32View(backend, dy), backend.typedArrayFromHeap(argmax) as Int32Array, f32View(backend, dx));
      return dx;
    }),
    withFallback(tf.FusedBatchNorm, previous(tf.FusedBatchNorm), ({ inputs, backend, attrs }, addon) => {
      // tfjs's batchNorm op (eval mode in @kiln/layers): statistics given, one vector per channel.
      const { x, mean, variance, scale, offset } = inputs;
      const { varianceEpsilon } = attrs as { varianceEpsilon: number };
      if (!float32(x, mean, variance, scale, offset) || (x.shape.length !== 4 && x.shape.length !== 2) || !(varianceEpsilon > 0)) return undefined;
      if (tf.util.sizeFromShape(x.shape) === 0) return undefined;
      const c = x.shape[x.shape.length - 1];
      if (![mean, variance, scale, offset].every((t) => t === undefined || (t.shape.length === 1 && t.shape[0] === c))) return undefined;
      const [n, h, w] = x.shape.length === 4 ? x.shape : [x.shape[0], 1, 1];
      const y = backend.makeOutput(x.shape, 'float32');
      // Without a scale or an offset, oneDNN gets ones and zeros (made after the output, whose allocation may move the heap).
      const ones = scale ? undefined : new Float32Array(c).fill(1);
      const zeros = offset ? undefined : new Float32Array(c);
      addon.batchNormInference(
        Int32Array.of(n, h, w, c), varianceEpsilon, f32View(backend, x), f32View(backend, mean), f32View(backend, variance),
        scale ? f32View(backend, scale) : ones!, offset ? f32View(backend, offset) : zeros!, f32View(backend, y),
      );
      return y;
    }),
    withFallback(tf.BatchMatMul, previous(tf.BatchMatMul), ({ inputs, backend, attrs }, addon) =>
      matMul(backend, addon, inputs.a, inputs.b, undefined, false, attrs as { transposeA: boolean; transposeB: boolean })),
    withFallback(tf._FusedMatMul, previous(tf._FusedMatMul), ({ inputs, backend, attrs }, addon) => {
      const { activation } = attrs as { activation?: string };
      if ((activation !== undefined && activation !== 'linear' && activation !== 'relu') || inputs.preluActivationWeights) return undefined;
      return matMul(backend, addon, inputs.a, inputs.b, inputs.bias, activation === 'relu', attrs as { transposeA: boolean; transposeB: boolean });
    }),
  ];
}

/** [N, H, W, C] of NHWC or [N, C] input, as the batch-norm kernels take it. */
function normGeometry(kernel: string, x: tf.TensorInfo): Int32Array {
  if (x.dtype !== 'float32' || (x.shape.length !== 4 && x.shape.length !== 2)) {
    throw new ShapeMismatchError(kernel, 'float32 input [N, H, W, C] or [N, C]', x.shape);
  }
  const [n, h, w, c] = x.shape.length === 4 ? x.shape : [x.shape[0], 1, 1, x.shape[1]];
  return Int32Array.of(n, h, w, c);
}

/**
 * The fused batch-norm kernels of @kiln/core's contract (training-mode forward with batch
 * statistics, and its gradient), as one oneDNN primitive each. They exist only while oneDNN is
 * active; `@kiln/layers` uses them when they are registered for the active backend.
 */
export function dnnlBatchNormConfigs(): tf.KernelConfig[] {
  const addon = () => {
    const s = loadDnnl();
    if (!s.loaded) throw new Error(`kiln: the oneDNN addon is not loaded (${s.reason})`);
    return s.addon;
  };
  const forwardFunc = ({ inputs, backend, attrs }: WasmKernelArgs<{ epsilon: number }>): tf.TensorInfo[] => {
    const { x, gamma, beta } = inputs;
    const g = normGeometry(BATCH_NORM_TRAINING_KERNEL, x);
    const c = g[3];
    const y = backend.makeOutput(x.shape, 'float32');
    const mean = backend.makeOutput([c], 'float32');
    const variance = backend.makeOutput([c], 'float32');
    addon().batchNormForward(g, attrs.epsilon, f32View(backend, x), f32View(backend, gamma), f32View(backend, beta), f32View(backend, y), f32View(backend, mean), f32View(backend, variance));
    return [y, mean, variance];
  };
  const gradFunc = ({ inputs, backend, attrs }: WasmKernelArgs<{ epsilon: number }>): tf.TensorInfo[] => {
    const { x, dy, mean, variance, gamma } = inputs;
    const g = normGeometry(BATCH_NORM_TRAINING_GRAD_KERNEL, x);
    const c = g[3];
    const dx = backend.makeOutput(x.shape, 'float32');
    const dgamma = backend.makeOutput([c], 'float32');
    const dbeta = backend.makeOutput([c], 'float32');
    addon().batchNormBackward(
      g, attrs.epsilon, f32View(backend, x), f32View(backend, dy), f32View(backend, mean), f32View(backend, variance),
      f32View(backend, gamma), f32View(backend, dx), f32View(backend, dgamma), f32View(backend, dbeta),
    );
    return [dx, dgamma, dbeta];
  };
  return [
    { kernelName: BATCH_NORM_TRAINING_KERNEL, backendName: 'wasm', kernelFunc: forwardFunc as unknown as tf.KernelFunc },
    { kernelName: BATCH_NORM_TRAINING_GRAD_KERNEL, backendName: 'wasm', kernelFunc: gradFunc as unknown as tf.KernelFunc },
  ];
}

interface AdamAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  step: number;
}

/** `ADAM_UPDATE_MULTI_KERNEL`'s attributes: Adam's, with one step count per parameter. */
interface AdamMultiAttrs extends Omit<AdamAttrs, 'step'> {
  count: number;
  steps: number[];
}

interface SgdAttrs {
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  first: boolean;
}

/** The float32 inputs of a fused update, all of the parameter's shape, or a typed error naming the odd one. */
function sameShapeFloat32(kernel: string, inputs: Record<string, tf.TensorInfo | undefined>): void {
  const shape = inputs.param!.shape;
  for (const [name, t] of Object.entries(inputs)) {
    if (t && (t.dtype !== 'float32' || !tf.util.arraysEqual(t.shape, shape))) {
      throw new ShapeMismatchError(`${kernel} ${name}`, `float32 [${shape}] like the parameter`, t.shape);
    }
  }
}

/**
 * The fused optimizer updates of @kiln/core's contract (`ADAM_UPDATE_KERNEL`, `SGD_UPDATE_KERNEL`):
 * one native loop per parameter instead of 10–15 element-wise WASM kernels and their bookkeeping.
 * Like the batch-norm kernels they exist only while oneDNN is active, so `KILN_DNNL=0` leaves
 * `@kiln/optim` on its op-by-op path.
 */
export function dnnlOptimizerConfigs(): tf.KernelConfig[] {
  const addon = () => {
    const s = loadDnnl();
    if (!s.loaded) throw new Error(`kiln: the oneDNN addon is not loaded (${s.reason})`);
    return s.addon;
  };
  /** One parameter's update; `kernel` names the kernel in shape errors. */
  const adamOne = (kernel: string, backend: BackendWasm, attrs: Omit<AdamAttrs, 'step'>, step: number, inputs: Partial<Record<string, tf.TensorInfo>>, suffix = ''): tf.TensorInfo[] => {
    const [param, grad, expAvg, expAvgSq, maxExpAvgSq] = ['param', 'grad', 'expAvg', 'expAvgSq', 'maxExpAvgSq'].map((k) => inputs[k + suffix]);
    if (!param || !grad || !expAvg || !expAvgSq) throw new ShapeMismatchError(`${kernel} inputs`, `param${suffix}, grad${suffix}, expAvg${suffix} and expAvgSq${suffix}`, Object.keys(inputs).join(', '));
    sameShapeFloat32(suffix ? `${kernel} parameter ${suffix}:` : kernel, { param, grad, expAvg, expAvgSq, maxExpAvgSq });
    const { lr, beta1, beta2, eps, weightDecay, decoupled } = attrs;
    const mode = weightDecay === 0 ? 0 : decoupled ? 2 : 1;
    const decay = mode === 2 ? 1 - lr * weightDecay : weightDecay;
    // The scalars exactly as Adam's composite path computes them (in double, then rounded to float32 by the op).
    const hyper = Float64Array.of(lr / (1 - Math.pow(beta1, step)), beta1, 1 - beta1, beta2, 1 - beta2, Math.sqrt(1 - Math.pow(beta2, step)), eps, decay, mode);
    const outs = [param, expAvg, expAvgSq, ...(maxExpAvgSq ? [maxExpAvgSq] : [])].map((t) => backend.makeOutput(t.shape, 'float32'));
    const v = (t: tf.TensorInfo | undefined) => (t ? f32View(backend, t) : null);
    addon().adamUpdate(hyper, v(param)!, v(grad)!, v(expAvg)!, v(expAvgSq)!, v(maxExpAvgSq), v(outs[0])!, v(outs[1])!, v(outs[2])!, v(outs[3]));
    return outs;
  };
  const adam = ({ inputs, backend, attrs }: WasmKernelArgs<AdamAttrs>): tf.TensorInfo[] => adamOne(ADAM_UPDATE_KERNEL, backend, attrs, attrs.step, inputs);
  // The same native update per parameter, so each result is the single kernel's bit for bit; only
  // tfjs's per-call work (engine bookkeeping, argument checks) is paid once.
  const adamMulti = ({ inputs, backend, attrs }: WasmKernelArgs<AdamMultiAttrs>): tf.TensorInfo[] => {
    const { count, steps } = attrs;
    if (!(Number.isInteger(count) && count >= 0 && Array.isArray(steps) && steps.length === count)) {
      throw new ShapeMismatchError(`${ADAM_UPDATE_MULTI_KERNEL} steps`, `one step count per parameter (count ${count})`, String(steps));
    }
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < count; i++) outs.push(...adamOne(ADAM_UPDATE_MULTI_KERNEL, backend, attrs, steps[i], inputs, String(i)));
    return outs;
  };
  const sgd = ({ inputs, backend, attrs }: WasmKernelArgs<SgdAttrs>): tf.TensorInfo[] => {
    const { param, grad, momentumBuffer } = inputs;
    sameShapeFloat32(SGD_UPDATE_KERNEL, { param, grad, momentumBuffer });
    const { lr, weightDecay, momentum, dampening, nesterov, first } = attrs;
    const outs = [param, ...(momentumBuffer ? [momentumBuffer] : [])].map((t) => backend.makeOutput(t.shape, 'float32'));
    const v = (t: tf.TensorInfo | undefined) => (t ? f32View(backend, t) : null);
    addon().sgdUpdate(Float64Array.of(lr, weightDecay, momentum, 1 - dampening, nesterov ? 1 : 0, first ? 1 : 0), v(param)!, v(grad)!, v(momentumBuffer), v(outs[0])!, v(outs[1]));
    return outs;
  };
  return [
    { kernelName: ADAM_UPDATE_KERNEL, backendName: 'wasm', kernelFunc: adam as unknown as tf.KernelFunc },
    { kernelName: ADAM_UPDATE_MULTI_KERNEL, backendName: 'wasm', kernelFunc: adamMulti as unknown as tf.KernelFunc },
    { kernelName: SGD_UPDATE_KERNEL, backendName: 'wasm', kernelFunc: sgd as unknown as tf.KernelFunc },
  ];
}

/**
 * @kiln/core's `BIAS_RELU_GRAD_KERNEL` as one native loop, present while oneDNN is active. (A
 * JavaScript loop over the WASM heap measured several times slower than the tfjs WASM kernels it
 * replaces, so without the addon `@kiln/layers` keeps those.)
 */
export function dnnlBiasReluGradConfig(): tf.KernelConfig {
  const biasReluGrad = ({ inputs, backend }: WasmKernelArgs): tf.TensorInfo[] => {
    const { dy, y } = inputs;
    if (!float32(dy, y) || dy.shape.length < 1 || !tf.util.arraysEqual(dy.shape, y.shape)) {
      throw new ShapeMismatchError(`${BIAS_RELU_GRAD_KERNEL}(dy)`, `float32 [${y.shape}] like the ReLU's output`, dy.shape);
    }
    const s = loadDnnl();
    if (!s.loaded) throw new Error(`kiln: the oneDNN addon is not loaded (${s.reason})`);
    const dz = backend.makeOutput(dy.shape, 'float32');
    const db = backend.makeOutput([dy.shape[dy.shape.length - 1]], 'float32');
    s.addon.biasReluGrad(f32View(backend, dy), f32View(backend, y), f32View(backend, dz), f32View(backend, db));
    return [dz, db];
  };
  return { kernelName: BIAS_RELU_GRAD_KERNEL, backendName: 'wasm', kernelFunc: biasReluGrad as unknown as tf.KernelFunc };
}
