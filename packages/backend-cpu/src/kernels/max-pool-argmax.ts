/**
 * @kiln/core's `MAX_POOL_ARGMAX_KERNEL` and its gradient for the WASM backend, as loops over the
 * tensors on the WebAssembly heap (so they run in browsers and without the oneDNN addon; the addon
 * registers the same loops in C++ over them, native/kiln_dnnl.cc). The forward pass writes, beside
 * each maximum, the index of the input it came from, and the gradient adds dy there: one pass over
 * the pooled values, where tfjs's `MaxPoolGrad` searches every window of the input again.
 */
import { tf, ConfigError, MAX_POOL_ARGMAX_GRAD_KERNEL, MAX_POOL_ARGMAX_KERNEL, ShapeMismatchError } from '@kiln/core';
import { f32View, type WasmKernelArgs } from './wasm-heap.js';

/** The forward kernel's attributes (see @kiln/core's `MAX_POOL_ARGMAX_KERNEL`). */
export interface MaxPoolArgmaxAttrs {
  filterSize: [number, number];
  strides: [number, number];
  pad: [number, number];
  outShape: [number, number];
  inputShape: [number, number, number, number];
}

/** A checked pool: [N, H, W, C, OH, OW, KH, KW, SH, SW, PT, PL], the addon's geometry too. */
export type PoolGeometry = Int32Array;

const positiveInts = (v: unknown, n: number): v is number[] => Array.isArray(v) && v.length === n && v.every((d) => Number.isInteger(d) && d > 0);

/**
 * The geometry of a `MAX_POOL_ARGMAX_KERNEL` call, or a typed error naming what is wrong: x float32
 * [N, H, W, C] equal to `inputShape`, positive window and strides, padding smaller than the window,
 * and every window overlapping the input (else its maximum would be padding).
 */
export function maxPoolArgmaxGeometry(x: tf.TensorInfo, attrs: MaxPoolArgmaxAttrs): PoolGeometry {
  const where = `${MAX_POOL_ARGMAX_KERNEL}(x)`;
  if (x.dtype !== 'float32' || x.shape.length !== 4 || !positiveInts(x.shape, 4)) throw new ShapeMismatchError(where, 'float32 [N, H, W, C]', x.shape);
  const [N, H, W, C] = x.shape;
  const { filterSize, strides, pad, outShape, inputShape } = attrs;
  if (!Array.isArray(inputShape) || !tf.util.arraysEqual(inputShape, x.shape)) throw new ShapeMismatchError(`${MAX_POOL_ARGMAX_KERNEL} attrs.inputShape`, `x's shape [${x.shape}]`, String(inputShape));
  const bad = (name: string, expected: string, found: unknown): never => {
    throw new ConfigError(`${MAX_POOL_ARGMAX_KERNEL} attrs.${name}`, expected, found);
  };
  if (!positiveInts(filterSize, 2)) bad('filterSize', 'two positive integers', filterSize);
  if (!positiveInts(strides, 2)) bad('strides', 'two positive integers', strides);
  if (!positiveInts(outShape, 2)) bad('outShape', 'two positive integers', outShape);
  const [KH, KW] = filterSize;
  const [SH, SW] = strides;
  const [OH, OW] = outShape;
  if (!Array.isArray(pad) || pad.length !== 2 || !pad.every((p, d) => Number.isInteger(p) && p >= 0 && p < filterSize[d])) {
    bad('pad', `[top, left], each ≥ 0 and below the window [${filterSize}]`, pad);
  }
  const [PT, PL] = pad;
  if ((OH - 1) * SH - PT >= H || (OW - 1) * SW - PL >= W) bad('outShape', `windows that all overlap the ${H}×${W} input`, outShape);
  return Int32Array.of(N, H, W, C, OH, OW, KH, KW, SH, SW, PT, PL);
}

/**
 * The first maximum of every pooling window, in row-major window order and compared with `>`:
 * `argmax[o]` is its index within its image (NHWC), and `y[o]` its value when `y` is given. A
 * window with nothing above −∞ (all NaN or −∞, or lying wholly in the padding) gets −1 — or, with
 * `emptyToFirst`, its first cell and that cell's value, so that y is always x at argmax.
 * `g` is [N, H, W, C, OH, OW, KH, KW, SH, SW, PT, PL]. Shared by the argmax kernel and tfjs's
 * `MaxPoolGrad` (max-pool-grad.ts); the addon's C++ loops compute the same.
 */
export function windowMaxima(x: Float32Array, g: ArrayLike<number>, argmax: Int32Array, y: Float32Array | undefined, emptyToFirst: boolean): void {
  const [N, H, W, C, OH, OW, KH, KW, SH, SW, PT, PL] = Array.from(g);
  const best = y ?? new Float32Array(N * OH * OW * C);
  let o = 0;
  for (let n = 0; n < N; n++) {
    const image = n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * SH - PT;
      const ihLo = Math.max(0, ih0);
      const ihHi = Math.min(H, ih0 + KH);
      for (let ow = 0; ow < OW; ow++, o += C) {
        const iw0 = ow * SW - PL;
        const iwLo = Math.max(0, iw0);
        const iwHi = Math.min(W, iw0 + KW);
        for (let c = 0; c < C; c++) {
          best[o + c] = -Infinity;
          argmax[o + c] = -1;
        }
        for (let ih = ihLo; ih < ihHi; ih++) {
          for (let iw = iwLo; iw < iwHi; iw++) {
            const at = (ih * W + iw) * C;
            for (let c = 0; c < C; c++) {
              const v = x[image + at + c];
              if (v > best[o + c]) {
                best[o + c] = v;
                argmax[o + c] = at + c;
              }
            }
          }
        }
        if (emptyToFirst) {
          const first = (ihLo * W + iwLo) * C;
          for (let c = 0; c < C; c++) {
            if (argmax[o + c] < 0) {
              argmax[o + c] = first + c;
              best[o + c] = x[image + first + c];
            }
          }
        }
      }
    }
  }
}

function maxPoolArgmax({ inputs, backend, attrs }: WasmKernelArgs<MaxPoolArgmaxAttrs>): tf.TensorInfo[] {
  const { x } = inputs;
  const geometry = maxPoolArgmaxGeometry(x, attrs);
  const [N, , , C, OH, OW] = geometry;
  const y = backend.makeOutput([N, OH, OW, C], 'float32');
  const argmax = backend.makeOutput([N, OH, OW, C], 'int32');
  // Every window overlaps the input (checked above), so each has a first cell.
  windowMaxima(f32View(backend, x), geometry, backend.typedArrayFromHeap(argmax) as Int32Array, f32View(backend, y), true);
  return [y, argmax];
}

/**
 * The checked shapes of a gradient call: dy float32 and argmax int32 of one shape [N, OH, OW, C],
 * and `inputShape` [N, H, W, C] with the same N and C. Returns [N, per image in, per image out].
 */
export function maxPoolArgmaxGradShapes(dy: tf.TensorInfo, argmax: tf.TensorInfo, inputShape: unknown): [number, number, number] {
  const kernel = MAX_POOL_ARGMAX_GRAD_KERNEL;
  if (dy.dtype !== 'float32' || dy.shape.length !== 4) throw new ShapeMismatchError(`${kernel}(dy)`, 'float32 [N, OH, OW, C]', dy.shape);
  if (argmax.dtype !== 'int32' || !tf.util.arraysEqual(argmax.shape, dy.shape)) throw new ShapeMismatchError(`${kernel}(argmax)`, `int32 [${dy.shape}] like dy`, argmax.shape);
  const [N, OH, OW, C] = dy.shape;
  if (!positiveInts(inputShape, 4) || inputShape[0] !== N || inputShape[3] !== C) {
    throw new ShapeMismatchError(`${kernel} attrs.inputShape`, `[${N}, H, W, ${C}] (dy's batch and channels)`, String(inputShape));
  }
  return [N, inputShape[1] * inputShape[2] * C, OH * OW * C];
}

function maxPoolArgmaxGrad({ inputs, backend, attrs }: WasmKernelArgs<{ inputShape: number[] }>): tf.TensorInfo {
  const { dy, argmax } = inputs;
  const [N, perIn, perOut] = maxPoolArgmaxGradShapes(dy, argmax, attrs.inputShape);
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  const dxv = f32View(backend, dx);
  const gv = f32View(backend, dy);
  const av = backend.typedArrayFromHeap(argmax) as Int32Array;
  dxv.fill(0);
  for (let n = 0, o = 0; n < N; n++) {
    const image = n * perIn;
    for (let end = o + perOut; o < end; o++) {
      const a = av[o];
      // An index from elsewhere than the forward kernel: refuse it rather than drop its gradient.
      if (!(a >= 0 && a < perIn)) throw new ShapeMismatchError(`${MAX_POOL_ARGMAX_GRAD_KERNEL}(argmax)`, `indices in [0, ${perIn}) within an image`, String(a));
      dxv[image + a] += gv[o];
    }
  }
  return dx;
}

/** The two kernels, for backend 'wasm'. */
export const maxPoolArgmaxConfigs: tf.KernelConfig[] = [
  { kernelName: MAX_POOL_ARGMAX_KERNEL, backendName: 'wasm', kernelFunc: maxPoolArgmax as unknown as tf.KernelFunc },
  { kernelName: MAX_POOL_ARGMAX_GRAD_KERNEL, backendName: 'wasm', kernelFunc: maxPoolArgmaxGrad as unknown as tf.KernelFunc },
];
