import { tf, ConfigError, type Rng } from '@kiln/core';
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, init, type Tensor } from '@kiln/layers';
import { ZooModel, forwardUpTo, skipInitOptions } from './zoo-model.js';

/** Options of `LeNet5`. */
export interface LeNet5Options {
  /** Classes predicted by the head. Default 10. */
  numClasses?: number;
  /** Channels of the input image. Default 1. */
  inChannels?: number;
  /**
   * Height and width of the input. Default [28, 28]. The classifier reads the flattened
   * 16×h'×w' map of the second pooling (h' = ⌊(⌊h/2⌋ − 4)/2⌋), so its first layer is sized from
   * this; 12×12 is the smallest input that leaves a map to read.
   */
  inputSize?: [number, number];
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/** Side of LeNet-5's last feature map for an input side `n`: same conv, pool 2, valid 5×5 conv, pool 2. */
export function lenet5MapSize(n: number): number {
  return Math.floor((Math.floor(n / 2) - 4) / 2);
}

/**
 * LeNet-5 as commonly trained today on 28×28 inputs: conv 5×5×6 (same) → ReLU → max-pool 2 →
 * conv 5×5×16 (valid) → ReLU → max-pool 2 → dense 120 → 84 → classes. 61,706 parameters with
 * 10 classes and one input channel (other input sizes resize the first dense layer). Members are named `features` (conv stack) and `classifier`
 * as in torchvision's AlexNet/VGG.
 */
export class LeNet5 extends ZooModel {
  readonly headPath = 'classifier.4';
  override readonly flattenedInputs: Record<string, [number, number, number]>;
  /** The conv stack, registered as `features`. */
  readonly convs: Sequential;
  /** Three dense layers: 400 → 120 → 84 → classes. */
  readonly classifier: Sequential;

  constructor(options: LeNet5Options = {}) {
    super();
    const { numClasses = 10, inChannels = 1, inputSize = [28, 28], rng } = options;
    const [fh, fw] = inputSize.map(lenet5MapSize);
    if (!(fh >= 1 && fw >= 1)) throw new ConfigError('LeNet5.inputSize', 'at least 12×12 (two 2×2 poolings around a 5×5 valid convolution)', inputSize);
    this.flattenedInputs = { 'classifier.0': [16, fh, fw] };
    const z = skipInitOptions(options.skipInit);
    const he = { weightInit: init.kaimingNormal({ nonlinearity: 'relu' }), biasInit: init.zeros(), ...z };
    this.convs = this.registerModule(
      'features',
      new Sequential(
        new Conv2d({ inChannels, outChannels: 6, kernelSize: 5, padding: 'same', rng, ...he }),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d({ inChannels: 6, outChannels: 16, kernelSize: 5, rng, ...he }),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
      ),
    );
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(
        new Linear({ inFeatures: 16 * fh * fw, outFeatures: 120, rng, ...he }),
        new ReLU(),
        new Linear({ inFeatures: 120, outFeatures: 84, rng, ...he }),
        new ReLU(),
        new Linear({ inFeatures: 84, outFeatures: numClasses, rng, ...z }),
      ),
    );
  }

  /** The 84 activations feeding the head. */
  features(x: Tensor): Tensor {
    return tf.tidy(() => forwardUpTo(this.classifier, this.convs.forward(x), 4));
  }
}
