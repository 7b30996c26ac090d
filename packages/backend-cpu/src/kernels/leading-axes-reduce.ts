/**
 * `Sum` and `Mean` for the WASM backend when the reduced axes lead (`[0]`, `[0, 1, 2]`, … or
 * all of them), which is what batch norm's statistics, its gradient and every bias gradient ask
 * of an NHWC tensor. tfjs's WASM kernels only reduce innermost axes, so for these they first
 * transpose the whole tensor (channels first) and then reduce: a full extra copy per call. Here
 * one pass adds each row of C channels into a double-precision accumulator. Other reductions (and
 * non-float32 dtypes) go to tfjs's kernels unchanged.
 */
import { tf } from '@kiln/core';
import { sumConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sum.js';
import { meanConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Mean.js';
import { f32View, type WasmKernelArgs } from './wasm-heap.js';

/** The attributes of tfjs's `Sum` and `Mean`. */
export interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

type KernelFn = (args: WasmKernelArgs<ReduceAttrs>) => tf.TensorInfo;

/** Number of leading axes `axis` names, or -1 when it names anything else. */
function leadingAxes(axis: number | number[], shape: number[]): number {
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  return axes.every((a, i) => a === i) ? axes.length : -1;
}

/**
 * A float32 reduction over leading axes as `rows` rows of `inner` values each, and its output
 * shape; undefined for any other reduction (left to tfjs's kernels). The native kernel in dnnl.ts
 * takes the same cases.
 */
export function leadingReduction(x: tf.TensorInfo, attrs: ReduceAttrs): { rows: number; inner: number; outShape: number[] } | undefined {
  const k = leadingAxes(attrs.axis, x.shape);
  const size = tf.util.sizeFromShape(x.shape);
  if (x.dtype !== 'float32' || k <= 0 || size === 0) return undefined;
  const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
  return { rows, inner: size / rows, outShape: attrs.keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k) };
}

function reduceLeading(native: KernelFn, mean: boolean): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const r = leadingReduction(inputs.x as tf.TensorInfo, attrs);
    if (!r) return native(args);
    const { rows, inner, outShape } = r;
    const x = inputs.x as tf.TensorInfo;
    const out = backend.makeOutput(outShape, 'float32');
    const acc = new Float64Array(inner);
    const xv = f32View(backend, x);
    for (let r = 0, o = 0; r < rows; r++) {
      for (let c = 0; c < inner; c++, o++) acc[c] += xv[o];
    }
    if (mean) for (let c = 0; c < inner; c++) acc[c] /= rows;
    f32View(backend, out).set(acc);
    return out;
  };
}

export const leadingSumConfig: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: 'wasm',
  setupFunc: sumConfig.setupFunc,
  kernelFunc: reduceLeading(sumConfig.kernelFunc as unknown as KernelFn, false) as unknown as tf.KernelFunc,
};

export const leadingMeanConfig: tf.KernelConfig = {
  kernelName: tf.Mean,
  backendName: 'wasm',
  setupFunc: meanConfig.setupFunc,
  kernelFunc: reduceLeading(meanConfig.kernelFunc as unknown as KernelFn, true) as unknown as tf.KernelFunc,
};
