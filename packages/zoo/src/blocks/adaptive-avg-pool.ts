import { tf, ConfigError } from '@kiln/core';
import { Module, type Tensor } from '@kiln/layers';

/**
 * PyTorch's `AdaptiveAvgPool2d` over NHWC input: output cell (i, j) is the mean of input rows
 * ⌊i·H/oh⌋ … ⌈(i+1)·H/oh⌉−1 and the matching columns, so any input size maps to a fixed
 * `[oh, ow]` grid (AlexNet's and VGG's 6×6 / 7×7 before the classifier). Smaller inputs than the
 * grid replicate cells, exactly as PyTorch does.
 */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];

  constructor(outputSize: number | [number, number]) {
    super();
    this.outputSize = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
    if (this.outputSize.some((s) => !Number.isInteger(s) || s < 1)) throw new ConfigError('AdaptiveAvgPool2d.outputSize', 'a positive integer or pair', outputSize);
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, {}, 'NHWC');
    const [, h, w] = x.shape;
    const [oh, ow] = this.outputSize;
    return tf.tidy(() => {
      // Equal bins are a plain average pool; otherwise pool rows, then columns, bin by bin.
      if (h % oh === 0 && w % ow === 0) return tf.avgPool(x as tf.Tensor4D, [h / oh, w / ow], [h / oh, w / ow], 'valid');
      return binMean(binMean(x, 1, oh), 2, ow);
    });
  }
}

/** Mean over PyTorch's adaptive bins along one spatial axis. */
function binMean(x: Tensor, axis: 1 | 2, out: number): Tensor {
  const n = x.shape[axis] as number;
  if (n === out) return x;
  const bins: Tensor[] = [];
  for (let i = 0; i < out; i++) {
    const start = Math.floor((i * n) / out);
    const end = Math.ceil(((i + 1) * n) / out);
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    begin[axis] = start;
    size[axis] = end - start;
    bins.push(tf.mean(tf.slice(x, begin, size), axis, true));
  }
  return tf.concat(bins, axis);
}
