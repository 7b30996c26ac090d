import { tf, type Rng } from '@kiln/core';
import { AdaptiveAvgPool2d, Dropout, GlobalAvgPool2d, Linear, MaxPool2d, Module, Sequential, init, type Tensor } from '@kiln/layers';
import { BasicConv2d } from './blocks/basic-conv.js';
import { checkTransformInput, imagenetToUnitRange } from './blocks/transform-input.js';
import type { AuxiliaryHeads } from './auxiliary-heads.js';
import { ZooModel, skipInitOptions, type BuildOptions } from './zoo-model.js';

/** torchvision initialises GoogLeNet's convolutions and dense layers with N(0, 0.01²) (truncated at ±2). */
const STD = 0.01;

const basic = (inChannels: number, outChannels: number, kernelSize: number, b: BuildOptions, stride = 1, padding = 0) =>
  new BasicConv2d({ inChannels, outChannels, kernelSize, stride, padding, initStd: STD, ...b });

/** torchvision's `MaxPool2d(k, s, p, ceil_mode=True)`: GoogLeNet's pools keep a last partial window. */
const ceilPool = (kernelSize: number, stride: number, padding = 0) => new MaxPool2d({ kernelSize, stride, padding, ceilMode: true });

const dense = (inFeatures: number, outFeatures: number, b: BuildOptions) =>
  new Linear({ inFeatures, outFeatures, weightInit: init.normal(0, STD), biasInit: init.zeros(), rng: b.rng, ...skipInitOptions(b.skipInit) });

/**
 * The Inception module (Szegedy et al., 2015, Fig. 2b): 1×1, 1×1→3×3, 1×1→"5×5", and
 * 3×3 max-pool→1×1 branches concatenated on channels. The third branch uses a 3×3 kernel, as
 * torchvision does (its published weights were trained that way).
 */
export class Inception extends Module {
  /** 1×1 convolution. */
  readonly branch1: BasicConv2d;
  /** 1×1 reduction → 3×3. */
  readonly branch2: Sequential;
  /** 1×1 reduction → 3×3 (the paper's 5×5). */
  readonly branch3: Sequential;
  /** 3×3 max pool → 1×1 projection. */
  readonly branch4: Sequential;

  constructor(inChannels: number, ch1x1: number, ch3x3red: number, ch3x3: number, ch5x5red: number, ch5x5: number, poolProj: number, b: BuildOptions) {
    super();
    this.branch1 = this.registerModule('branch1', basic(inChannels, ch1x1, 1, b));
    this.branch2 = this.registerModule('branch2', new Sequential(basic(inChannels, ch3x3red, 1, b), basic(ch3x3red, ch3x3, 3, b, 1, 1)));
    this.branch3 = this.registerModule('branch3', new Sequential(basic(inChannels, ch5x5red, 1, b), basic(ch5x5red, ch5x5, 3, b, 1, 1)));
    this.branch4 = this.registerModule('branch4', new Sequential(ceilPool(3, 1, 1), basic(inChannels, poolProj, 1, b)));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => tf.concat([this.branch1.forward(x), this.branch2.forward(x), this.branch3.forward(x), this.branch4.forward(x)], 3));
  }
}

/** GoogLeNet's auxiliary classifier: 4×4 average pool → 1×1 conv 128 → dense 1024 → dropout → classes. */
export class InceptionAux extends Module {
  /** Average pool to 4×4. */
  readonly pool: AdaptiveAvgPool2d;
  /** 1×1 convolution to 128 channels. */
  readonly conv: BasicConv2d;
  /** Dense layer to 1024 features. */
  readonly fc1: Linear;
  /** Dense layer to the classes. */
  readonly fc2: Linear;
  /** Dropout before `fc2`. */
  readonly dropout: Dropout;

  constructor(inChannels: number, numClasses: number, dropout: number, b: BuildOptions) {
    super();
    this.pool = this.registerModule('pool', new AdaptiveAvgPool2d(4));
    this.conv = this.registerModule('conv', basic(inChannels, 128, 1, b));
    this.fc1 = this.registerModule('fc1', dense(2048, 1024, b));
    this.fc2 = this.registerModule('fc2', dense(1024, numClasses, b));
    this.dropout = this.registerModule('dropout', new Dropout(dropout, b.rng));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const h = this.conv.forward(this.pool.forward(x));
      const flat = tf.reshape(h, [x.shape[0], -1]);
      return this.fc2.forward(this.dropout.forward(tf.relu(this.fc1.forward(flat))));
    });
  }
}

/** Options of {@link GoogLeNet}. */
export interface GoogLeNetOptions {
  /** Classes predicted by the head (and the auxiliary heads). Default 1000. */
  numClasses?: number;
  /** Channels of the input image. Default 3. */
  inChannels?: number;
  /** Build the two auxiliary classifiers (after inception 4a and 4d). Default false. */
  auxLogits?: boolean;
  /** Dropout probability before the head. Default 0.2. */
  dropout?: number;
  /** Dropout probability inside the auxiliary classifiers. Default 0.7. */
  auxDropout?: number;
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

/** The main and auxiliary logits of a training-time GoogLeNet pass. */
export interface GoogLeNetOutputs {
  /** The main head's logits. */
  logits: Tensor;
  /** The first auxiliary head's logits (after inception 4a), when it exists. */
  aux1?: Tensor;
  /** The second auxiliary head's logits (after inception 4d), when it exists. */
  aux2?: Tensor;
}

/**
 * GoogLeNet / Inception v1 (Szegedy et al., 2015) in torchvision's layout, with batch norm after
 * every convolution: 6,624,904 parameters without and 13,004,888 with the auxiliary heads
 * (1000 classes). Any input from 15×15 works (224×224 is the usual size).
 */
export class GoogLeNet extends ZooModel implements AuxiliaryHeads {
  readonly headPath = 'fc';
  /** See the `transformInput` option; `loadPretrained` turns it on for weights that need it. */
  transformInput: boolean;
  /** Weight of each auxiliary loss (torchvision's reference recipe: loss = main + 0.3·(aux1 + aux2)). */
  readonly auxLossWeight = 0.3;
  private readonly trunk: [string, Module][] = [];
  /** Auxiliary classifier after inception 4a (with `auxLogits`). */
  readonly aux1?: InceptionAux;
  /** Auxiliary classifier after inception 4d (with `auxLogits`). */
  readonly aux2?: InceptionAux;
  /** Global average pool before the head. */
  readonly avgpool: GlobalAvgPool2d;
  /** Dropout before the head. */
  readonly dropout: Dropout;

  constructor(options: GoogLeNetOptions = {}) {
    super();
    const { numClasses = 1000, inChannels = 3, auxLogits = false, dropout = 0.2, auxDropout = 0.7, rng } = options;
    this.transformInput = options.transformInput ?? false;
    checkTransformInput('GoogLeNet', this.transformInput, inChannels);
    const b: BuildOptions = { rng, skipInit: options.skipInit };
    const add = (name: string, m: Module) => this.trunk.push([name, this.registerModule(name, m)]);
    add('conv1', basic(inChannels, 64, 7, b, 2, 3));
    add('maxpool1', ceilPool(3, 2));
    add('conv2', basic(64, 64, 1, b));
    add('conv3', basic(64, 192, 3, b, 1, 1));
    add('maxpool2', ceilPool(3, 2));
    add('inception3a', new Inception(192, 64, 96, 128, 16, 32, 32, b));
    add('inception3b', new Inception(256, 128, 128, 192, 32, 96, 64, b));
    add('maxpool3', ceilPool(3, 2));
    add('inception4a', new Inception(480, 192, 96, 208, 16, 48, 64, b));
    add('inception4b', new Inception(512, 160, 112, 224, 24, 64, 64, b));
    add('inception4c', new Inception(512, 128, 128, 256, 24, 64, 64, b));
    add('inception4d', new Inception(512, 112, 144, 288, 32, 64, 64, b));
    add('inception4e', new Inception(528, 256, 160, 320, 32, 128, 128, b));
    add('maxpool4', ceilPool(2, 2));
    add('inception5a', new Inception(832, 256, 160, 320, 32, 128, 128, b));
    add('inception5b', new Inception(832, 384, 192, 384, 48, 128, 128, b));
    if (auxLogits) {
      this.aux1 = this.registerModule('aux1', new InceptionAux(512, numClasses, auxDropout, b));
      this.aux2 = this.registerModule('aux2', new InceptionAux(528, numClasses, auxDropout, b));
      this.flattenedInputs['aux1.fc1'] = [128, 4, 4];
      this.flattenedInputs['aux2.fc1'] = [128, 4, 4];
    }
    this.avgpool = this.registerModule('avgpool', new GlobalAvgPool2d());
    this.dropout = this.registerModule('dropout', new Dropout(dropout, rng));
    this.registerModule('fc', dense(1024, numClasses, b));
  }

  /** Main logits plus, while training with auxiliary heads, theirs (for the weighted auxiliary loss). */
  forwardWithAux(x: Tensor): GoogLeNetOutputs {
    const aux: { aux1?: Tensor; aux2?: Tensor } = {};
    const useAux = this.training && this.aux1 !== undefined;
    const logits = tf.tidy(() => {
      let h = this.transformInput ? imagenetToUnitRange(x, 'GoogLeNet') : x;
      for (const [name, m] of this.trunk) {
        h = m.forward(h);
        if (useAux && name === 'inception4a') aux.aux1 = tf.keep(this.aux1!.forward(h));
        if (useAux && name === 'inception4d') aux.aux2 = tf.keep(this.aux2!.forward(h));
      }
      return this.head().forward(this.dropout.forward(this.avgpool.forward(h)));
    });
    return { logits, ...aux };
  }

  /** The globally pooled 1024 channels of inception 5b (after the head's dropout). */
  features(x: Tensor): Tensor {
    return tf.tidy(() => {
      let h = this.transformInput ? imagenetToUnitRange(x, 'GoogLeNet') : x;
      for (const [, m] of this.trunk) h = m.forward(h);
      return this.dropout.forward(this.avgpool.forward(h));
    });
  }
}
