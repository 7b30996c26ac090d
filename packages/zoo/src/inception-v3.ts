import { tf, type Rng } from '@kiln/core';
import { AvgPool2d, Dropout, GlobalAvgPool2d, Linear, MaxPool2d, Module, init, type Tensor } from '@kiln/layers';
import { BasicConv2d } from './blocks/basic-conv.js';
import { checkTransformInput, imagenetToUnitRange } from './blocks/transform-input.js';
import type { AuxiliaryHeads } from './auxiliary-heads.js';
import { ZooModel, skipInitOptions, type BuildOptions } from './zoo-model.js';

/** Builds the named `BasicConv2d` units of one Inception v3 block, torchvision's init std 0.1. */
abstract class Block extends Module {
  constructor(
    /** Weight generator and skip-init flag every unit is built with. */
    protected readonly build: BuildOptions,
  ) {
    super();
  }

  /** Registers a `BasicConv2d` unit under `name`. */
  protected unit(name: string, inChannels: number, outChannels: number, kernelSize: number | [number, number], padding: number | [number, number] = 0, stride = 1): BasicConv2d {
    return this.registerModule(name, new BasicConv2d({ inChannels, outChannels, kernelSize, padding, stride, initStd: 0.1, ...this.build }));
  }

  /** Runs the named units one after another. */
  protected chain(x: Tensor, ...names: string[]): Tensor {
    return tf.tidy(() => names.reduce((h, n) => this.getModule(n).forward(h), x));
  }
}

/** 3×3 average pool, stride 1, padding 1, zeros counted (PyTorch's `count_include_pad=True`). */
const avgPool3 = new AvgPool2d({ kernelSize: 3, stride: 1, padding: 1 });
const maxPool3s2 = new MaxPool2d({ kernelSize: 3, stride: 2 });

/** 35×35 grid: 1×1, 5×5, double 3×3 and pooled branches (Szegedy et al., 2016, Fig. 5). */
export class InceptionA extends Block {
  constructor(inChannels: number, poolFeatures: number, b: BuildOptions) {
    super(b);
    this.unit('branch1x1', inChannels, 64, 1);
    this.unit('branch5x5_1', inChannels, 48, 1);
    this.unit('branch5x5_2', 48, 64, 5, 2);
    this.unit('branch3x3dbl_1', inChannels, 64, 1);
    this.unit('branch3x3dbl_2', 64, 96, 3, 1);
    this.unit('branch3x3dbl_3', 96, 96, 3, 1);
    this.unit('branch_pool', inChannels, poolFeatures, 1);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() =>
      tf.concat(
        [
          this.chain(x, 'branch1x1'),
          this.chain(x, 'branch5x5_1', 'branch5x5_2'),
          this.chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'),
          this.chain(avgPool3.forward(x), 'branch_pool'),
        ],
        3,
      ),
    );
  }
}

/** Grid reduction 35→17 (Fig. 10). */
export class InceptionB extends Block {
  constructor(inChannels: number, b: BuildOptions) {
    super(b);
    this.unit('branch3x3', inChannels, 384, 3, 0, 2);
    this.unit('branch3x3dbl_1', inChannels, 64, 1);
    this.unit('branch3x3dbl_2', 64, 96, 3, 1);
    this.unit('branch3x3dbl_3', 96, 96, 3, 0, 2);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => tf.concat([this.chain(x, 'branch3x3'), this.chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'), maxPool3s2.forward(x)], 3));
  }
}

/** 17×17 grid with factorised 7×7 convolutions (1×7 then 7×1; Fig. 6). */
export class InceptionC extends Block {
  constructor(inChannels: number, c7: number, b: BuildOptions) {
    super(b);
    this.unit('branch1x1', inChannels, 192, 1);
    this.unit('branch7x7_1', inChannels, c7, 1);
    this.unit('branch7x7_2', c7, c7, [1, 7], [0, 3]);
    this.unit('branch7x7_3', c7, 192, [7, 1], [3, 0]);
    this.unit('branch7x7dbl_1', inChannels, c7, 1);
    this.unit('branch7x7dbl_2', c7, c7, [7, 1], [3, 0]);
    this.unit('branch7x7dbl_3', c7, c7, [1, 7], [0, 3]);
    this.unit('branch7x7dbl_4', c7, c7, [7, 1], [3, 0]);
    this.unit('branch7x7dbl_5', c7, 192, [1, 7], [0, 3]);
    this.unit('branch_pool', inChannels, 192, 1);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() =>
      tf.concat(
        [
          this.chain(x, 'branch1x1'),
          this.chain(x, 'branch7x7_1', 'branch7x7_2', 'branch7x7_3'),
          this.chain(x, 'branch7x7dbl_1', 'branch7x7dbl_2', 'branch7x7dbl_3', 'branch7x7dbl_4', 'branch7x7dbl_5'),
          this.chain(avgPool3.forward(x), 'branch_pool'),
        ],
        3,
      ),
    );
  }
}

/** Grid reduction 17→8. */
export class InceptionD extends Block {
  constructor(inChannels: number, b: BuildOptions) {
    super(b);
    this.unit('branch3x3_1', inChannels, 192, 1);
    this.unit('branch3x3_2', 192, 320, 3, 0, 2);
    this.unit('branch7x7x3_1', inChannels, 192, 1);
    this.unit('branch7x7x3_2', 192, 192, [1, 7], [0, 3]);
    this.unit('branch7x7x3_3', 192, 192, [7, 1], [3, 0]);
    this.unit('branch7x7x3_4', 192, 192, 3, 0, 2);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() =>
      tf.concat([this.chain(x, 'branch3x3_1', 'branch3x3_2'), this.chain(x, 'branch7x7x3_1', 'branch7x7x3_2', 'branch7x7x3_3', 'branch7x7x3_4'), maxPool3s2.forward(x)], 3),
    );
  }
}

/** 8×8 grid with expanded filter banks: 1×3 and 3×1 side by side (Fig. 7). */
export class InceptionE extends Block {
  constructor(inChannels: number, b: BuildOptions) {
    super(b);
    this.unit('branch1x1', inChannels, 320, 1);
    this.unit('branch3x3_1', inChannels, 384, 1);
    this.unit('branch3x3_2a', 384, 384, [1, 3], [0, 1]);
    this.unit('branch3x3_2b', 384, 384, [3, 1], [1, 0]);
    this.unit('branch3x3dbl_1', inChannels, 448, 1);
    this.unit('branch3x3dbl_2', 448, 384, 3, 1);
    this.unit('branch3x3dbl_3a', 384, 384, [1, 3], [0, 1]);
    this.unit('branch3x3dbl_3b', 384, 384, [3, 1], [1, 0]);
    this.unit('branch_pool', inChannels, 192, 1);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const b3 = this.chain(x, 'branch3x3_1');
      const bd = this.chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2');
      return tf.concat(
        [
          this.chain(x, 'branch1x1'),
          this.chain(b3, 'branch3x3_2a'),
          this.chain(b3, 'branch3x3_2b'),
          this.chain(bd, 'branch3x3dbl_3a'),
          this.chain(bd, 'branch3x3dbl_3b'),
          this.chain(avgPool3.forward(x), 'branch_pool'),
        ],
        3,
      );
    });
  }
}

/** Auxiliary classifier on the 17×17 grid: 5×5/3 average pool → 1×1 conv 128 → 5×5 conv 768 → pool → classes. */
export class InceptionV3Aux extends Block {
  constructor(inChannels: number, numClasses: number, b: BuildOptions) {
    super(b);
    this.unit('conv0', inChannels, 128, 1);
    this.registerModule('conv1', new BasicConv2d({ inChannels: 128, outChannels: 768, kernelSize: 5, initStd: 0.01, ...b }));
    this.registerModule('fc', new Linear({ inFeatures: 768, outFeatures: numClasses, weightInit: init.normal(0, 0.001), biasInit: init.zeros(), rng: b.rng, ...skipInitOptions(b.skipInit) }));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const h = this.chain(tf.avgPool(x as tf.Tensor4D, 5, 3, 'valid'), 'conv0', 'conv1');
      return this.getModule('fc').forward(tf.mean(h, [1, 2]));
    });
  }
}

/** Options of {@link InceptionV3}. */
export interface InceptionV3Options {
  /** Classes predicted by the head (and the auxiliary head). Default 1000. */
  numClasses?: number;
  /** Channels of the input image. Default 3. */
  inChannels?: number;
  /** Build the auxiliary classifier on Mixed_6e. Default false. */
  auxLogits?: boolean;
  /** Dropout probability before the head. Default 0.5. */
  dropout?: number;
  /**
   * Rescale ImageNet-normalised input to [-1, 1] first, as torchvision's `transform_input` does for
   * the weights Google trained (torchvision turns it on when it loads them). Default false.
   */
  transformInput?: boolean;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/**
 * Inception v3 (Szegedy et al., 2016) in torchvision's layout and names (`Conv2d_1a_3x3`,
 * `Mixed_5b.branch1x1`, `AuxLogits`): 23,834,568 parameters without and 27,161,264 with the
 * auxiliary head (1000 classes). Inputs from 75×75 work; 299×299 is the usual size.
 */
export class InceptionV3 extends ZooModel implements AuxiliaryHeads {
  readonly headPath = 'fc';
  /** See the `transformInput` option; `loadPretrained` turns it on for weights that need it. */
  transformInput: boolean;
  /** Weight of each auxiliary loss (torchvision's reference recipe: loss = main + 0.4·aux). */
  readonly auxLossWeight = 0.4;
  private readonly trunk: [string, Module][] = [];
  /** The auxiliary classifier after Mixed_6e, when built with `auxLogits`. */
  readonly auxLogits?: InceptionV3Aux;
  /** Dropout before the head. */
  readonly dropout: Dropout;
  /** Global average pool before the head. */
  readonly avgpool: GlobalAvgPool2d;

  constructor(options: InceptionV3Options = {}) {
    super();
    const { numClasses = 1000, inChannels = 3, auxLogits = false, dropout = 0.5, rng } = options;
    this.transformInput = options.transformInput ?? false;
    checkTransformInput('InceptionV3', this.transformInput, inChannels);
    const b: BuildOptions = { rng, skipInit: options.skipInit };
    const add = (name: string, m: Module) => this.trunk.push([name, this.registerModule(name, m)]);
    const unit = (i: number, o: number, k: number, stride = 1, padding = 0) => new BasicConv2d({ inChannels: i, outChannels: o, kernelSize: k, stride, padding, initStd: 0.1, ...b });
    add('Conv2d_1a_3x3', unit(inChannels, 32, 3, 2));
    add('Conv2d_2a_3x3', unit(32, 32, 3));
    add('Conv2d_2b_3x3', unit(32, 64, 3, 1, 1));
    add('maxpool1', new MaxPool2d({ kernelSize: 3, stride: 2 }));
    add('Conv2d_3b_1x1', unit(64, 80, 1));
    add('Conv2d_4a_3x3', unit(80, 192, 3));
    add('maxpool2', new MaxPool2d({ kernelSize: 3, stride: 2 }));
    add('Mixed_5b', new InceptionA(192, 32, b));
    add('Mixed_5c', new InceptionA(256, 64, b));
    add('Mixed_5d', new InceptionA(288, 64, b));
    add('Mixed_6a', new InceptionB(288, b));
    add('Mixed_6b', new InceptionC(768, 128, b));
    add('Mixed_6c', new InceptionC(768, 160, b));
    add('Mixed_6d', new InceptionC(768, 160, b));
    add('Mixed_6e', new InceptionC(768, 192, b));
    if (auxLogits) this.auxLogits = this.registerModule('AuxLogits', new InceptionV3Aux(768, numClasses, b));
    add('Mixed_7a', new InceptionD(768, b));
    add('Mixed_7b', new InceptionE(1280, b));
    add('Mixed_7c', new InceptionE(2048, b));
    this.avgpool = this.registerModule('avgpool', new GlobalAvgPool2d());
    this.dropout = this.registerModule('dropout', new Dropout(dropout, rng));
    this.registerModule('fc', new Linear({ inFeatures: 2048, outFeatures: numClasses, weightInit: init.normal(0, 0.1), biasInit: init.zeros(), rng, ...skipInitOptions(options.skipInit) }));
  }

  /** Main logits plus, while training with the auxiliary head, its logits. */
  forwardWithAux(x: Tensor): {
    /** The main head's logits. */
    logits: Tensor;
    /** The auxiliary head's logits, while training with it. */
    aux?: Tensor;
  } {
    let aux: Tensor | undefined;
    const useAux = this.training && this.auxLogits !== undefined;
    const logits = tf.tidy(() => {
      let h = this.transformInput ? imagenetToUnitRange(x, 'InceptionV3') : x;
      for (const [name, m] of this.trunk) {
        h = m.forward(h);
        if (useAux && name === 'Mixed_6e') aux = tf.keep(this.auxLogits!.forward(h));
      }
      return this.head().forward(this.dropout.forward(this.avgpool.forward(h)));
    });
    return aux ? { logits, aux } : { logits };
  }

  /** The globally pooled 2048 channels of Mixed_7c (after the head's dropout). */
  features(x: Tensor): Tensor {
    return tf.tidy(() => {
      let h = this.transformInput ? imagenetToUnitRange(x, 'InceptionV3') : x;
      for (const [, m] of this.trunk) h = m.forward(h);
      return this.dropout.forward(this.avgpool.forward(h));
    });
  }
}
