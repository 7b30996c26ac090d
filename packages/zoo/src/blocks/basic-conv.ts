import { tf, type Rng } from '@kiln/core';
import { BatchNorm2d, Conv2d, Module, init, type Tensor } from '@kiln/layers';

/** Options of {@link BasicConv2d}. */
export interface BasicConv2dOptions {
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Kernel extent (one number, or [h, w]). */
  kernelSize: number | [number, number];
  /** Default 1. */
  stride?: number;
  /** Zero padding on both sides (one number, or [h, w]). Default 0. */
  padding?: number | [number, number];
  /** Standard deviation of the truncated-normal weight init (torchvision: 0.01 GoogLeNet, 0.1 Inception v3). */
  initStd: number;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
  /** Allocate zeros instead of drawing random weights. */
  skipInit?: boolean;
}

/**
 * Convolution without bias → batch norm (ε = 0.001) → ReLU: the unit GoogLeNet and Inception v3
 * are built from, with torchvision's member names `conv` and `bn`.
 */
export class BasicConv2d extends Module {
  /** The convolution (no bias: batch norm follows). */
  readonly conv: Conv2d;
  /** Batch norm after it. */
  readonly bn: BatchNorm2d;

  constructor(o: BasicConv2dOptions) {
    super();
    this.conv = this.registerModule(
      'conv',
      new Conv2d({
        inChannels: o.inChannels,
        outChannels: o.outChannels,
        kernelSize: o.kernelSize,
        stride: o.stride ?? 1,
        padding: o.padding ?? 0,
        bias: false,
        // torchvision draws trunc_normal_(std, a=-2, b=2): a cut at ±2 is ≥20σ for these stds,
        // so a plain normal is the same distribution.
        weightInit: o.skipInit ? init.zeros() : init.normal(0, o.initStd),
        rng: o.rng,
      }),
    );
    this.bn = this.registerModule('bn', new BatchNorm2d({ numFeatures: o.outChannels, eps: 1e-3 }));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => tf.relu(this.bn.forward(this.conv.forward(x))));
  }
}
