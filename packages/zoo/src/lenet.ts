import { Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, init, type Tensor } from '@kiln/layers';
import type { Rng } from '@kiln/core';

export interface LeNet5Options {
  numClasses?: number;
  inChannels?: number;
  rng?: Rng;
}

/**
 * LeNet-5 as commonly trained today on 28×28 inputs: conv 5×5×6 (same) → ReLU → max-pool 2 →
 * conv 5×5×16 (valid) → ReLU → max-pool 2 → dense 120 → 84 → classes. 61,706 parameters with
 * 10 classes and one input channel.
 */
export class LeNet5 extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;

  constructor(options: LeNet5Options = {}) {
    super();
    const { numClasses = 10, inChannels = 1, rng } = options;
    const he = { weightInit: init.kaimingNormal({ nonlinearity: 'relu' }), biasInit: init.zeros() };
    this.features = this.registerModule(
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
        new Linear({ inFeatures: 16 * 5 * 5, outFeatures: 120, rng, ...he }),
        new ReLU(),
        new Linear({ inFeatures: 120, outFeatures: 84, rng, ...he }),
        new ReLU(),
        new Linear({ inFeatures: 84, outFeatures: numClasses, rng }),
      ),
    );
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x));
  }
}
