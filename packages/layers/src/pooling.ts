import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import { pair, tfPadding, type Padding2d } from './conv.js';

export interface Pool2dOptions {
  kernelSize: number | [number, number];
  /** Defaults to the kernel size (non-overlapping windows); AlexNet uses 3 with stride 2. */
  stride?: number | [number, number];
  padding?: Padding2d;
}

abstract class Pool2d extends Module {
  readonly config: { kernelSize: [number, number]; stride: [number, number]; padding: Padding2d };
  constructor(options: Pool2dOptions | number) {
    super();
    const o = typeof options === 'number' ? { kernelSize: options } : options;
    const kernelSize = pair(o.kernelSize);
    if (kernelSize.some((k) => !Number.isInteger(k) || k < 1)) throw new ConfigError(`${this.typeName}.kernelSize`, 'a positive integer or pair', o.kernelSize);
    this.config = { kernelSize, stride: pair(o.stride ?? kernelSize), padding: o.padding ?? 0 };
  }
}

/** Max over each window, NHWC. */
export class MaxPool2d extends Pool2d {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    const { kernelSize, stride, padding } = this.config;
    const pad = tfPadding(padding);
    if (typeof pad === 'string') return tf.maxPool(x as tf.Tensor4D, kernelSize, stride, pad);
    // Explicit padding: pad with -inf so padded cells never win, as PyTorch does.
    return tf.tidy(() => tf.maxPool(tf.pad(x, pad, -Infinity) as tf.Tensor4D, kernelSize, stride, 'valid'));
  }
}

/** Mean over each window, NHWC. Explicit padding counts the zeros (PyTorch's count_include_pad=True). */
export class AvgPool2d extends Pool2d {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    const { kernelSize, stride, padding } = this.config;
    const pad = tfPadding(padding);
    if (typeof pad === 'string') return tf.avgPool(x as tf.Tensor4D, kernelSize, stride, pad);
    return tf.tidy(() => tf.avgPool(tf.pad(x, pad) as tf.Tensor4D, kernelSize, stride, 'valid'));
  }
}

/** Mean over all spatial positions: [N, H, W, C] → [N, C]. */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    return tf.mean(x, [1, 2]);
  }
}
