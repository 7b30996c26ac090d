import { tf, ConfigError, ShapeMismatchError, defaultRng, type Rng } from '@kiln/core';
import { Conv2d, Flatten, LeCunTanh, Linear, Module, Sequential, Subsampling, init, type Parameter, type Tensor } from '@kiln/layers';
import { ZooModel, forwardUpTo, skipInitOptions } from './zoo-model.js';

/**
 * LeNet-5's C3 connection table (LeCun et al., 1998, Table I): which of S2's 6 maps each of C3's 16
 * maps reads. The first six read 3 contiguous maps, the next six 4 contiguous, three read 4
 * non-contiguous and the last reads all 6 — 60 connections in all.
 */
export const LENET5_C3_TABLE: readonly (readonly number[])[] = [
  [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1],
  [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2],
  [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
  [0, 1, 2, 3, 4, 5],
];

/**
 * A convolution where output map j only reads the input maps `table[j]`. Only the connected
 * kernels exist as parameters (`weight` is `[kh, kw, connections]`), so the parameter count is the
 * paper's; forward scatters them into a dense HWIO kernel with a constant 0/1 matrix.
 */
export class ConnectionTableConv2d extends Module {
  /** The connected kernels only, `[kh, kw, connections]`. */
  readonly weight: Parameter;
  /** One bias per output map. */
  readonly bias: Parameter;
  private readonly scatter: tf.Tensor2D;

  constructor(
    /** Channels of the input. */
    readonly inChannels: number,
    /** For each output map, the input maps it reads. */
    readonly table: readonly (readonly number[])[],
    /** Square kernel extent. */
    readonly kernelSize: number,
    rng?: Rng,
  ) {
    super();
    const outChannels = table.length;
    const connections = table.reduce((n, ins) => n + ins.length, 0);
    const scatter = new Float32Array(connections * inChannels * outChannels);
    let k = 0;
    table.forEach((ins, j) => {
      for (const i of ins) {
        if (!Number.isInteger(i) || i < 0 || i >= inChannels) throw new ConfigError(`ConnectionTableConv2d.table[${j}]`, `input maps in 0..${inChannels - 1}`, ins);
        scatter[k * inChannels * outChannels + i * outChannels + j] = 1;
        k++;
      }
    });
    this.scatter = tf.tensor2d(scatter, [connections, inChannels * outChannels]);
    const fanIn = (j: number): number => table[j].length * kernelSize * kernelSize;
    // U(±2.4/F_in) per output map, as in the paper.
    const w = new Float32Array(kernelSize * kernelSize * connections);
    const gen = rng ?? defaultRng();
    const owner = table.flatMap((ins, j) => ins.map(() => j));
    const draw = (b: number): number => gen.uniform(-b, b);
    for (let p = 0; p < kernelSize * kernelSize; p++) for (let c = 0; c < connections; c++) w[p * connections + c] = draw(2.4 / fanIn(owner[c]));
    this.weight = this.registerParameter('weight', tf.tensor3d(w, [kernelSize, kernelSize, connections]));
    this.bias = this.registerParameter('bias', tf.tensor1d(table.map((_, j) => draw(2.4 / fanIn(j)))));
  }

  /** The dense `[kh, kw, in, out]` kernel with zeros where the table has no connection. */
  denseKernel(): tf.Tensor4D {
    const k = this.kernelSize;
    return tf.tidy(() =>
      tf.reshape(tf.matMul(tf.reshape(this.weight.variable, [k * k, -1]), this.scatter), [k, k, this.inChannels, this.table.length]),
    ) as tf.Tensor4D;
  }

  forward(x: Tensor): Tensor {
    this.expectShape(x, 4, { 3: this.inChannels }, 'NHWC');
    return tf.tidy(() => tf.add(tf.conv2d(x as tf.Tensor4D, this.denseKernel(), 1, 'valid'), this.bias.variable));
  }

  override dispose(): void {
    this.scatter.dispose();
    super.dispose();
  }
}

/** Options of {@link LeNet5Classic}. */
export interface LeNet5ClassicOptions {
  /** Classes predicted by the output layer. Default 10. */
  numClasses?: number;
  /** Channels of the input image (the paper's is 1; C1 reads all of them). Default 1. */
  inChannels?: number;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/**
 * LeNet-5 as published (LeCun, Bottou, Bengio & Haffner, 1998) on 32×32×1 inputs: C1 conv 5×5×6 →
 * S2 trainable subsampling → C3 conv 5×5×16 through the connection table → S4 → C5 conv 5×5×120 →
 * F6 dense 84 → output dense, every layer followed by the scaled tanh (`LeCunTanh`). The paper's Euclidean RBF
 * output is replaced by a linear layer, as is usual; 60,850 parameters for 10 classes.
 * 28×28 inputs are zero-padded to 32×32, as the paper centred its 28×28 digits in a 32×32 field.
 */
export class LeNet5Classic extends ZooModel {
  readonly headPath = 'classifier.2';
  /** Channels the input must have (the last axis of `[N, 32, 32, C]`); 1 unless set in the options. */
  readonly inChannels: number;
  /** C1 … C5 with the subsampling layers and activations, then a flatten; registered as `features`. */
  readonly convs: Sequential;
  /** F6 and the output layer. */
  readonly classifier: Sequential;

  constructor(options: LeNet5ClassicOptions = {}) {
    super();
    const { numClasses = 10, inChannels = 1, rng } = options;
    this.inChannels = inChannels;
    // The paper's init (Appendix C): every weight and bias from U(±2.4/F_in), F_in the unit's fan-in.
    // S2/S4 (the paper's subsampling): sum of each 2×2 window × a coefficient + a bias, both
    // U(±2.4/F_in) with F_in = 4.
    const subsampling = (channels: number) =>
      new Subsampling({ channels, reduce: 'sum', weightInit: init.uniform(-0.6, 0.6), biasInit: init.uniform(-0.6, 0.6), rng, ...skipInitOptions(options.skipInit) });
    const lecun = (fanIn: number) => ({ weightInit: init.uniform(-2.4 / fanIn, 2.4 / fanIn), biasInit: init.uniform(-2.4 / fanIn, 2.4 / fanIn), rng, ...skipInitOptions(options.skipInit) });
    this.convs = this.registerModule(
      'features',
      new Sequential(
        new Conv2d({ inChannels, outChannels: 6, kernelSize: 5, ...lecun(25 * inChannels) }),
        new LeCunTanh(),
        subsampling(6),
        new LeCunTanh(),
        new ConnectionTableConv2d(6, LENET5_C3_TABLE, 5, rng),
        new LeCunTanh(),
        subsampling(16),
        new LeCunTanh(),
        new Conv2d({ inChannels: 16, outChannels: 120, kernelSize: 5, ...lecun(400) }),
        new LeCunTanh(),
        new Flatten(),
      ),
    );
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(new Linear({ inFeatures: 120, outFeatures: 84, ...lecun(120) }), new LeCunTanh(), new Linear({ inFeatures: 84, outFeatures: numClasses, rng, ...skipInitOptions(options.skipInit) })),
    );
  }

  /** F6's 84 squashed activations. */
  features(x: Tensor): Tensor {
    this.expectShape(x, 4, { 3: this.inChannels }, 'NHWC');
    const side = x.shape[1];
    // C5 must reduce the map to 1×1: the network is defined for one input size only.
    if ((side !== 28 && side !== 32) || x.shape[2] !== side) throw new ShapeMismatchError(this.describe(), `[N, 32, 32, ${this.inChannels}] or [N, 28, 28, ${this.inChannels}]`, x.shape, 'resize the images to 32×32 (--image-size 32)');
    return tf.tidy(() => {
      let h = x;
      if (side === 28) {
        h = tf.pad(x, [
          [0, 0],
          [2, 2],
          [2, 2],
          [0, 0],
        ]);
      }
      return forwardUpTo(this.classifier, this.convs.forward(h), 2);
    });
  }
}
