import { tf, ConfigError, type Rng } from '@kiln/core';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, ReLU, Sequential, init, type Module, type Tensor } from '@kiln/layers';
import { ZooModel, forwardUpTo, skipInitOptions } from './zoo-model.js';

/** Conv widths per configuration, 'M' for a 2×2 max-pool (Simonyan & Zisserman, 2015, Table 1, A/B/D/E). */
export const VGG_CONFIGS = {
  /** VGG-11, configuration A. */
  11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  /** VGG-13, configuration B. */
  13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  /** VGG-16, configuration D. */
  16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  /** VGG-19, configuration E. */
  19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
} as const satisfies Record<number, readonly (number | 'M')[]>;

/** The VGG depths of Simonyan & Zisserman (2015). */
export type VggDepth = keyof typeof VGG_CONFIGS;

/** Options of {@link Vgg}. */
export interface VggOptions {
  /** 11, 13, 16 or 19 weight layers. */
  depth: VggDepth;
  /** Batch norm after every convolution (torchvision's `vgg*_bn`). Default false. */
  batchNorm?: boolean;
  /** Classes predicted by the head. Default 1000. */
  numClasses?: number;
  /** Channels of the input image. Default 3. */
  inChannels?: number;
  /**
   * Drop the fifth max-pool, so inputs of 16–31 px (28×28 digits) still leave a 1×1 map for the
   * adaptive pool (five pools need 32 px). The pool was the last layer of `features`, so every
   * layer keeps its index and torchvision weights still load. Default false.
   */
  smallInput?: boolean;
  /** Dropout probability after the two hidden dense layers. Default 0.5. */
  dropout?: number;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/**
 * VGG in torchvision's layout: 3×3 convolutions (padding 1) with ReLU, five 2×2 max-pools, an
 * adaptive average pool to 7×7 and a 4096-4096-classes classifier. Inputs of 32×32 and up work
 * (224×224 is the usual size), 16×16 and up with `smallInput`. torchvision's init: conv weights N(0, 2/fan_out), dense N(0, 0.01²),
 * biases 0.
 */
export class Vgg extends ZooModel {
  readonly headPath = 'classifier.6';
  override readonly flattenedInputs: Record<string, [number, number, number]> = { 'classifier.0': [512, 7, 7] };
  /** The convolution stack, registered as `features`. */
  readonly convs: Sequential;
  /** Average pool to 7×7 before the classifier. */
  readonly avgpool: AdaptiveAvgPool2d;
  /** Three dense layers with dropout. */
  readonly classifier: Sequential;

  constructor(options: VggOptions) {
    super();
    const { depth, batchNorm = false, numClasses = 1000, inChannels = 3, smallInput = false, dropout = 0.5, rng } = options;
    const cfg = VGG_CONFIGS[depth];
    if (!cfg) throw new ConfigError('Vgg.depth', `one of: ${Object.keys(VGG_CONFIGS).join(', ')}`, depth);
    const z = skipInitOptions(options.skipInit);
    const layers: Module[] = [];
    let c = inChannels;
    for (const [i, v] of cfg.entries()) {
      if (v === 'M') {
        if (!(smallInput && i === cfg.length - 1)) layers.push(new MaxPool2d(2));
        continue;
      }
      layers.push(
        new Conv2d({ inChannels: c, outChannels: v, kernelSize: 3, padding: 1, weightInit: init.kaimingNormal({ mode: 'fanOut', nonlinearity: 'relu' }), biasInit: init.zeros(), rng, ...z }),
      );
      if (batchNorm) layers.push(new BatchNorm2d(v));
      layers.push(new ReLU());
      c = v;
    }
    this.convs = this.registerModule('features', new Sequential(...layers));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(7));
    const dense = (i: number, o: number) => new Linear({ inFeatures: i, outFeatures: o, weightInit: init.normal(0, 0.01), biasInit: init.zeros(), rng, ...z });
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(dense(512 * 7 * 7, 4096), new ReLU(), new Dropout(dropout, rng), dense(4096, 4096), new ReLU(), new Dropout(dropout, rng), dense(4096, numClasses)),
    );
  }

  /** The 4096 activations of the second hidden dense layer (after its dropout). */
  features(x: Tensor): Tensor {
    return tf.tidy(() => forwardUpTo(this.classifier, tf.reshape(this.avgpool.forward(this.convs.forward(x)), [x.shape[0], -1]), 6));
  }
}
