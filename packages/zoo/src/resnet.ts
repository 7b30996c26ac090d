import { tf, ConfigError, type Rng } from '@kiln/core';
import { BatchNorm2d, Conv2d, Dropout, GlobalAvgPool2d, Linear, MaxPool2d, Module, Sequential, init, type Tensor } from '@kiln/layers';
import { ZooModel, skipInitOptions, type BuildOptions } from './zoo-model.js';

/** He et al. (2016) init as torchvision applies it: N(0, 2/fan_out) for every convolution. */
const heOut = init.kaimingNormal({ mode: 'fanOut', nonlinearity: 'relu' });

function conv(inChannels: number, outChannels: number, kernelSize: number, stride: number, b: BuildOptions, padding = (kernelSize - 1) / 2): Conv2d {
  return new Conv2d({ inChannels, outChannels, kernelSize, stride, padding, bias: false, weightInit: heOut, rng: b.rng, ...skipInitOptions(b.skipInit) });
}

/** 1×1 convolution + batch norm on the shortcut when a block changes resolution or width. */
function downsample(inChannels: number, outChannels: number, stride: number, b: BuildOptions): Sequential | undefined {
  if (stride === 1 && inChannels === outChannels) return undefined;
  return new Sequential(conv(inChannels, outChannels, 1, stride, b), new BatchNorm2d(outChannels));
}

/** Two 3×3 convolutions with an identity (or projected) shortcut: ResNet-18/34. */
export class BasicBlock extends Module {
  /** Output channels per `planes`: 1 (the block keeps its width). */
  static readonly expansion = 1;
  /** First 3×3 convolution (carries the stride). */
  readonly conv1: Conv2d;
  /** Batch norm after `conv1`. */
  readonly bn1: BatchNorm2d;
  /** Second 3×3 convolution. */
  readonly conv2: Conv2d;
  /** Batch norm after `conv2`. */
  readonly bn2: BatchNorm2d;
  /** 1×1 convolution + batch norm on the shortcut, when the block changes resolution or width. */
  readonly downsample?: Sequential;

  constructor(inChannels: number, width: number, stride: number, b: BuildOptions = {}) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inChannels, width, 3, stride, b));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    this.conv2 = this.registerModule('conv2', conv(width, width, 3, 1, b));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(width));
    const ds = downsample(inChannels, width, stride, b);
    if (ds) this.downsample = this.registerModule('downsample', ds);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const h = this.bn2.forward(this.conv2.forward(tf.relu(this.bn1.forward(this.conv1.forward(x)))));
      return tf.relu(tf.add(h, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/**
 * 1×1 reduce → 3×3 (carrying the stride, torchvision's "ResNet v1.5") → 1×1 expand ×4, with a
 * shortcut: ResNet-50/101/152.
 */
export class Bottleneck extends Module {
  /** Output channels per `planes`: 4 (the last 1×1 expands). */
  static readonly expansion = 4;
  /** 1×1 reduction. */
  readonly conv1: Conv2d;
  /** Batch norm after `conv1`. */
  readonly bn1: BatchNorm2d;
  /** 3×3 convolution (carries the stride). */
  readonly conv2: Conv2d;
  /** Batch norm after `conv2`. */
  readonly bn2: BatchNorm2d;
  /** 1×1 expansion. */
  readonly conv3: Conv2d;
  /** Batch norm after `conv3`. */
  readonly bn3: BatchNorm2d;
  /** 1×1 convolution + batch norm on the shortcut, when the block changes resolution or width. */
  readonly downsample?: Sequential;

  constructor(inChannels: number, width: number, stride: number, b: BuildOptions = {}) {
    super();
    const out = width * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv(inChannels, width, 1, 1, b));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    this.conv2 = this.registerModule('conv2', conv(width, width, 3, stride, b));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(width));
    this.conv3 = this.registerModule('conv3', conv(width, out, 1, 1, b));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(out));
    const ds = downsample(inChannels, out, stride, b);
    if (ds) this.downsample = this.registerModule('downsample', ds);
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      let h = tf.relu(this.bn1.forward(this.conv1.forward(x)));
      h = tf.relu(this.bn2.forward(this.conv2.forward(h)));
      h = this.bn3.forward(this.conv3.forward(h));
      return tf.relu(tf.add(h, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/** The ResNet depths of He et al. (2016). */
export type ResNetDepth = 18 | 34 | 50 | 101 | 152;

/** One depth's architecture. */
export interface ResNetConfig {
  /** Two 3×3 convolutions per block (`basic`) or 1×1 → 3×3 → 1×1 (`bottleneck`). */
  readonly block: 'basic' | 'bottleneck';
  /** Blocks in each of the four stages. */
  readonly layers: readonly [number, number, number, number];
}

/** Blocks per stage and block type for each depth (He et al., 2016, Table 1). */
export const RESNET_CONFIGS: Readonly<Record<ResNetDepth, ResNetConfig>> = {
  18: { block: 'basic', layers: [2, 2, 2, 2] },
  34: { block: 'basic', layers: [3, 4, 6, 3] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

/** Options of {@link ResNet}. */
export interface ResNetOptions {
  /** 18, 34, 50, 101 or 152 layers. */
  depth: ResNetDepth;
  /** Classes predicted by the head. Default 1000. */
  numClasses?: number;
  /** Channels of the input image. Default 3. */
  inChannels?: number;
  /**
   * Stem for 28–32 px images (CIFAR-style, He et al. §4.2): a 3×3 stride-1 convolution and no
   * max-pool instead of 7×7 stride 2 + max-pool, so small images are not shrunk 4× at once.
   * Default false (torchvision's stem).
   */
  smallInput?: boolean;
  /** Dropout probability before the head (torchvision has none). Default 0. */
  dropout?: number;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/**
 * ResNet (He et al., 2016) in torchvision's layout and names (`conv1`, `bn1`, `layer1.0.conv1`,
 * `layer2.0.downsample.0`, `fc`): 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808
 * parameters for depths 18 / 34 / 50 / 101 / 152 with 1000 classes. Any input size works (global
 * average pooling before the head).
 */
export class ResNet extends ZooModel {
  readonly headPath = 'fc';
  /** The stem: a 7×7 stride-2 convolution (3×3 stride 1 with `smallInput`). */
  readonly conv1: Conv2d;
  /** Batch norm after the stem. */
  readonly bn1: BatchNorm2d;
  /** The stem's 3×3 stride-2 max pool (absent with `smallInput`). */
  readonly maxpool?: MaxPool2d;
  /** The four stages of blocks (`layer1` … `layer4`). */
  readonly stages: Sequential[] = [];
  /** Global average pool before the head. */
  readonly avgpool: GlobalAvgPool2d;
  /** Dropout before the head, when `dropout` > 0. */
  readonly dropout?: Dropout;

  constructor(options: ResNetOptions) {
    super();
    const { depth, numClasses = 1000, inChannels = 3, smallInput = false, dropout = 0, rng } = options;
    const cfg = RESNET_CONFIGS[depth];
    if (!cfg) throw new ConfigError('ResNet.depth', `one of: ${Object.keys(RESNET_CONFIGS).join(', ')}`, depth);
    const b: BuildOptions = { rng, skipInit: options.skipInit };
    this.conv1 = this.registerModule('conv1', smallInput ? conv(inChannels, 64, 3, 1, b) : conv(inChannels, 64, 7, 2, b));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    if (!smallInput) this.maxpool = this.registerModule('maxpool', new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }));
    const Block = cfg.block === 'basic' ? BasicBlock : Bottleneck;
    let c = 64;
    cfg.layers.forEach((n, s) => {
      const width = 64 * 2 ** s;
      const stage = new Sequential();
      for (let i = 0; i < n; i++) {
        stage.push(new Block(c, width, i === 0 && s > 0 ? 2 : 1, b));
        c = width * Block.expansion;
      }
      this.stages.push(this.registerModule(`layer${s + 1}`, stage));
    });
    this.avgpool = this.registerModule('avgpool', new GlobalAvgPool2d());
    if (dropout > 0) this.dropout = this.registerModule('dropout', new Dropout(dropout, rng));
    this.registerModule('fc', new Linear({ inFeatures: c, outFeatures: numClasses, rng, ...skipInitOptions(options.skipInit) }));
  }

  /** The globally pooled output of the last stage (512 or 2048 values per image). */
  features(x: Tensor): Tensor {
    return tf.tidy(() => {
      let h = tf.relu(this.bn1.forward(this.conv1.forward(x)));
      if (this.maxpool) h = this.maxpool.forward(h);
      for (const stage of this.stages) h = stage.forward(h);
      h = this.avgpool.forward(h);
      return this.dropout ? this.dropout.forward(h) : h;
    });
  }
}
