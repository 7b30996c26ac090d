import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import { pair, type Padding2d } from './conv.js';
import { fusedMaxPool, hasFusedMaxPool } from './fused-training.js';

/** Options of {@link MaxPool2d} and {@link AvgPool2d}. */
export interface Pool2dOptions {
  /** Window (height, width); one number for a square window. */
  kernelSize: number | [number, number];
  /** Defaults to the kernel size (non-overlapping windows); AlexNet uses 3 with stride 2. */
  stride?: number | [number, number];
  /**
   * `valid`, `same` (tfjs semantics), or explicit symmetric padding per spatial dim as in PyTorch
   * (at most half the kernel). Default 0.
   */
  padding?: Padding2d;
  /**
   * Output size rounds up instead of down, so a last partial window is kept (PyTorch's
   * `ceil_mode`, used by GoogLeNet). A window never starts inside the right padding. Default false.
   */
  ceilMode?: boolean;
  /**
   * Average pooling only: whether explicit zero padding counts in the divisor (PyTorch's
   * `count_include_pad`, default true). Cells past the input added by `ceilMode` never count.
   */
  countIncludePad?: boolean;
}

/** Options of {@link MaxPool1d} and {@link AvgPool1d}. */
export interface Pool1dOptions {
  /** Window length. */
  kernelSize: number;
  /** Defaults to the kernel size. */
  stride?: number;
  /** `valid`, `same` or explicit symmetric padding. Default 0. */
  padding?: 'valid' | 'same' | number;
  /** Round the output length up; see {@link Pool2dOptions.ceilMode}. Default false. */
  ceilMode?: boolean;
  /** Average pooling only; see {@link Pool2dOptions.countIncludePad}. */
  countIncludePad?: boolean;
}

/** Output length of one pooled dimension with PyTorch's rounding rules. */
export function pooledLength(size: number, kernel: number, stride: number, pad: number, ceilMode: boolean): number {
  const span = size + 2 * pad - kernel;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  // The last window must start inside the input or the left padding.
  if (ceilMode && (out - 1) * stride >= size + pad) out--;
  return out;
}

/** The divisor of each window along one dim (PyTorch's avg-pool rule), for explicit padding. */
function windowCounts(size: number, kernel: number, stride: number, pad: number, out: number, includePad: boolean): number[] {
  const counts: number[] = [];
  for (let i = 0; i < out; i++) {
    let start = i * stride - pad;
    let end = Math.min(start + kernel, size + pad);
    if (!includePad) {
      start = Math.max(start, 0);
      end = Math.min(end, size);
    }
    counts.push(end - start);
  }
  return counts;
}

interface ResolvedPool {
  kernelSize: [number, number];
  stride: [number, number];
  padding: Padding2d;
  ceilMode: boolean;
  countIncludePad: boolean;
}

function resolvePool(layer: string, o: Pool2dOptions): ResolvedPool {
  const kernelSize = pair(o.kernelSize);
  if (kernelSize.some((k) => !Number.isInteger(k) || k < 1)) throw new ConfigError(`${layer}.kernelSize`, 'a positive integer or pair', o.kernelSize);
  const stride = pair(o.stride ?? kernelSize);
  if (stride.some((s) => !Number.isInteger(s) || s < 1)) throw new ConfigError(`${layer}.stride`, 'a positive integer or pair', o.stride);
  const padding = o.padding ?? 0;
  if (typeof padding === 'string') {
    if (padding !== 'valid' && padding !== 'same') throw new ConfigError(`${layer}.padding`, "'valid', 'same' or non-negative integers", padding);
    if (o.ceilMode) throw new ConfigError(`${layer}.ceilMode`, "false with padding 'valid'/'same' (use explicit padding)", o.ceilMode);
  } else {
    const p = pair(padding);
    if (p.some((v, i) => !Number.isInteger(v) || v < 0 || v > kernelSize[i] / 2)) {
      throw new ConfigError(`${layer}.padding`, 'non-negative integers of at most half the kernel size', padding);
    }
  }
  return { kernelSize, stride, padding, ceilMode: o.ceilMode ?? false, countIncludePad: o.countIncludePad ?? true };
}

/** Where the windows of a 2-D pool lie: output size and the padding before the first row and column. */
interface PoolWindows {
  out: [number, number];
  /** Cells of padding before the first row and before the first column. */
  before: [number, number];
}

/** The windows of `c` over NHWC `x`, with PyTorch's explicit padding and rounding or tfjs's 'valid'/'same'. */
function poolWindows(x: Tensor, c: ResolvedPool, where: string): PoolWindows {
  const { kernelSize: k, stride: s, padding } = c;
  const size = (x.shape as number[]).slice(1, 3);
  if (typeof padding === 'string') {
    if (padding === 'valid' && (size[0] < k[0] || size[1] < k[1])) throw new ShapeMismatchError(where, `spatial size of at least the kernel [${k.join(', ')}]`, x.shape);
    const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], k, s, 1, padding);
    return { out: [info.outHeight, info.outWidth], before: [info.padInfo.top, info.padInfo.left] };
  }
  const p = pair(padding);
  const out = [0, 1].map((d) => pooledLength(size[d], k[d], s[d], p[d], c.ceilMode)) as [number, number];
  if (out.some((o) => o < 1)) throw new ShapeMismatchError(where, `spatial size of at least the kernel [${k.map((kk, d) => kk - 2 * p[d]).join(', ')}]`, x.shape);
  return { out, before: p };
}

/**
 * Pools NHWC input with PyTorch's explicit padding and rounding, or tfjs's 'valid'/'same'. In
 * training, max pooling runs as one kernel that keeps each window's argmax where the backend has
 * it (fused-training.ts: the gradient is then a scatter, not a second search of every window).
 */
function pool2d(kind: 'max' | 'avg', x: Tensor, c: ResolvedPool, where: string, training: boolean): Tensor {
  const { kernelSize: k, stride: s, padding } = c;
  const { out, before } = poolWindows(x, c, where);
  if (kind === 'max' && training && x.dtype === 'float32' && hasFusedMaxPool()) return fusedMaxPool(x, k, s, before, out);
  if (typeof padding === 'string') return kind === 'max' ? tf.maxPool(x as tf.Tensor4D, k, s, padding) : tf.avgPool(x as tf.Tensor4D, k, s, padding);
  const p = pair(padding);
  const size = (x.shape as number[]).slice(1, 3);
  // Pad on the right far enough for the last (possibly partial) window; pad cells never win a max.
  const extra = [0, 1].map((d) => Math.max(0, (out[d] - 1) * s[d] + k[d] - size[d] - 2 * p[d]));
  const needsPad = p[0] + p[1] + extra[0] + extra[1] > 0;
  return tf.tidy(() => {
    const padded = needsPad
      ? tf.pad(
          x,
          [
            [0, 0],
            [p[0], p[0] + extra[0]],
            [p[1], p[1] + extra[1]],
            [0, 0],
          ],
          kind === 'max' ? -Infinity : 0,
        )
      : x;
    // 'valid' over the padded input gives exactly `out` windows; cells no window reaches are ignored.
    if (kind === 'max') return tf.maxPool(padded as tf.Tensor4D, k, s, 'valid');
    const mean = tf.avgPool(padded as tf.Tensor4D, k, s, 'valid');
    if (!needsPad) return mean;
    const ch = windowCounts(size[0], k[0], s[0], p[0], out[0], c.countIncludePad);
    const cw = windowCounts(size[1], k[1], s[1], p[1], out[1], c.countIncludePad);
    // avgPool divided by k_h·k_w; rescale each window to PyTorch's divisor.
    const scale = new Float32Array(out[0] * out[1]);
    for (let i = 0; i < out[0]; i++) for (let j = 0; j < out[1]; j++) scale[i * out[1] + j] = (k[0] * k[1]) / (ch[i] * cw[j]);
    return tf.mul(mean, tf.tensor4d(scale, [1, out[0], out[1], 1]));
  });
}

abstract class Pool2d extends Module {
  /** The options with every default filled in. */
  readonly config: ResolvedPool;
  constructor(options: Pool2dOptions | number) {
    super();
    this.config = resolvePool(this.typeName, typeof options === 'number' ? { kernelSize: options } : options);
  }
}

/**
 * Max over each window, NHWC. Explicit padding is −∞, so padded cells never win (as in PyTorch);
 * ties go to the first maximum in row-major window order. In training mode, where the backend has
 * @kiln/core's `MAX_POOL_ARGMAX_KERNEL`, one kernel returns each window's argmax with its maximum
 * and the gradient scatters to it; in eval mode the plain pool runs.
 */
export class MaxPool2d extends Pool2d {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    return pool2d('max', x, this.config, this.describe(), this.training);
  }
}

/** Mean over each window, NHWC, with PyTorch's divisor rules for explicit padding and `ceilMode`. */
export class AvgPool2d extends Pool2d {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    return pool2d('avg', x, this.config, this.describe(), false);
  }
}

abstract class Pool1d extends Module {
  /** The options with every default filled in (stride defaults to the window length). */
  readonly config: Required<Omit<Pool1dOptions, 'stride'>> & {
    /** Step between windows. */
    stride: number;
  };
  private readonly as2d: ResolvedPool;
  constructor(options: Pool1dOptions | number) {
    super();
    const o = typeof options === 'number' ? { kernelSize: options } : options;
    if (!Number.isInteger(o.kernelSize) || o.kernelSize < 1) throw new ConfigError(`${this.typeName}.kernelSize`, 'a positive integer', o.kernelSize);
    this.config = { kernelSize: o.kernelSize, stride: o.stride ?? o.kernelSize, padding: o.padding ?? 0, ceilMode: o.ceilMode ?? false, countIncludePad: o.countIncludePad ?? true };
    const { padding } = this.config;
    // A sequence is an image one row high.
    this.as2d = resolvePool(this.typeName, {
      ...this.config,
      kernelSize: [1, this.config.kernelSize],
      stride: [1, this.config.stride],
      padding: typeof padding === 'string' ? padding : [0, padding],
    });
  }

  /** Max or mean over each window (bin) of `x`. */
  protected pool(kind: 'max' | 'avg', x: Tensor): Tensor {
    this.expectShape(x, 3, {}, 'NLC');
    const [n, l, ch] = x.shape as number[];
    return tf.tidy(() => {
      const y = pool2d(kind, tf.reshape(x, [n, 1, l, ch]), this.as2d, this.describe(), this.training);
      return tf.reshape(y, [n, (y.shape as number[])[2], ch]);
    });
  }
}

/** Max over windows of a sequence, [N, L, C]. */
export class MaxPool1d extends Pool1d {
  forward(x: Tensor): Tensor {
    return this.pool('max', x);
  }
}

/** Mean over windows of a sequence, [N, L, C]. */
export class AvgPool1d extends Pool1d {
  forward(x: Tensor): Tensor {
    return this.pool('avg', x);
  }
}

/** Mean over all spatial positions: [N, H, W, C] → [N, C]. */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    return tf.mean(x, [1, 2]);
  }
}

/** Max over all spatial positions: [N, H, W, C] → [N, C]. */
export class GlobalMaxPool2d extends Module {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    return tf.max(x, [1, 2]);
  }
}

/** Mean over the whole sequence: [N, L, C] → [N, C]. */
export class GlobalAvgPool1d extends Module {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 3, {}, 'NLC');
    return tf.mean(x, 1);
  }
}

/** Options of {@link AdaptiveAvgPool2d} and {@link AdaptiveMaxPool2d}. */
export interface AdaptivePool2dOptions {
  /** Output (height, width); one number for a square output. */
  outputSize: number | [number, number];
}

/** PyTorch's adaptive bins: output cell i covers input rows floor(i·H/h) … ceil((i+1)·H/h) − 1. */
function adaptiveBins(size: number, out: number): [number, number][] {
  return Array.from({ length: out }, (_, i) => [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)]);
}

/** Reduces each adaptive bin along `axis`; rectangular bins make the 2-D pool separable. */
function adaptiveAlong(kind: 'max' | 'avg', x: Tensor, axis: number, out: number): Tensor {
  const size = x.shape[axis];
  if (size === out) return x;
  if (size % out === 0) {
    // Equal, non-overlapping bins: one reshape and reduction.
    const shape = [...x.shape];
    shape.splice(axis, 1, out, size / out);
    const r = tf.reshape(x, shape);
    return kind === 'max' ? tf.max(r, axis + 1) : tf.mean(r, axis + 1);
  }
  const parts = adaptiveBins(size, out).map(([a, b]) => {
    const begin = x.shape.map(() => 0);
    const len = [...x.shape];
    begin[axis] = a;
    len[axis] = b - a;
    const s = tf.slice(x, begin, len);
    return kind === 'max' ? tf.max(s, axis, true) : tf.mean(s, axis, true);
  });
  return tf.concat(parts, axis);
}

abstract class AdaptivePool2d extends Module {
  /** The output size as [h, w]. */
  readonly config: {
    /** Output height and width. */
    outputSize: [number, number];
  };
  constructor(options: AdaptivePool2dOptions | number | [number, number]) {
    super();
    const size = typeof options === 'number' || Array.isArray(options) ? options : options.outputSize;
    const outputSize = pair(size);
    if (outputSize.some((v) => !Number.isInteger(v) || v < 1)) throw new ConfigError(`${this.typeName}.outputSize`, 'a positive integer or pair', size);
    this.config = { outputSize };
  }

  /** Max or mean over each window (bin) of `x`. */
  protected pool(kind: 'max' | 'avg', x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    const [h, w] = this.config.outputSize;
    return tf.tidy(() => {
      const y = adaptiveAlong(kind, adaptiveAlong(kind, x, 1, h), 2, w);
      return y === x ? tf.clone(x) : y;
    });
  }
}

/**
 * Average pooling to a fixed output size whatever the input size (torchvision's AlexNet/VGG use
 * (6, 6)/(7, 7) before the classifier); bins overlap when the sizes do not divide, as in PyTorch.
 */
export class AdaptiveAvgPool2d extends AdaptivePool2d {
  forward(x: Tensor): Tensor {
    return this.pool('avg', x);
  }
}

/** Max pooling to a fixed output size, with PyTorch's adaptive bins. */
export class AdaptiveMaxPool2d extends AdaptivePool2d {
  forward(x: Tensor): Tensor {
    return this.pool('max', x);
  }
}
