import { tf } from '@kiln/core';
import { Module, type Tensor } from '@kiln/layers';

/**
 * Max pooling with PyTorch's `ceil_mode=True` (GoogLeNet): the output size is
 * ⌈(H + 2p − k)/s⌉ + 1, dropping a last window that would start in the right padding, and windows
 * that run past the edge see only real (or left-padded) cells. Implemented by padding with −∞.
 */
export class CeilMaxPool2d extends Module {
  constructor(
    readonly kernelSize: number,
    readonly stride: number,
    readonly padding = 0,
  ) {
    super();
  }

  override get typeName(): string {
    return 'MaxPool2d';
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    const { kernelSize: k, stride: s, padding: p } = this;
    const extra = (n: number): number => {
      let out = Math.ceil((n + 2 * p - k) / s) + 1;
      if ((out - 1) * s >= n + p) out -= 1;
      return Math.max(0, (out - 1) * s + k - (n + 2 * p));
    };
    const [, h, w] = x.shape;
    return tf.tidy(() => {
      const padded = tf.pad(
        x,
        [
          [0, 0],
          [p, p + extra(h)],
          [p, p + extra(w)],
          [0, 0],
        ],
        -Infinity,
      );
      return tf.maxPool(padded as tf.Tensor4D, k, s, 'valid');
    });
  }
}
