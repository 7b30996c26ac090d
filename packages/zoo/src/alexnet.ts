import { tf, type Rng } from '@kiln/core';
import { AdaptiveAvgPool2d, Conv2d, Dropout, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential, type Module, type Tensor } from '@kiln/layers';
import { ZooModel, forwardUpTo, skipInitOptions } from './zoo-model.js';

/** Options of {@link AlexNet}. */
export interface AlexNetOptions {
  /** Classes predicted by the head. Default 1000. */
  numClasses?: number;
  /** Channels of the input image. Default 3. */
  inChannels?: number;
  /** Dropout probability before the two hidden dense layers. Default 0.5. */
  dropout?: number;
  /**
   * Insert the paper's local response normalisation (n = 5, α = 1e-4, β = 0.75, k = 2) after the
   * first two ReLUs (Krizhevsky et al., 2012, §3.3). This shifts the `features.*` indices, so
   * torchvision weights only load into the default `lrn: false` layout. Default false.
   */
  lrn?: boolean;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/**
 * AlexNet in torchvision's single-tower layout (64-192-384-256-256 filters, as in Krizhevsky's
 * "one weird trick" revision): 61,100,840 parameters with 1000 classes. Any input of at least
 * 63×63 works: the adaptive average pool brings the conv map to 6×6 (224×224 is the usual size).
 */
export class AlexNet extends ZooModel {
  readonly headPath = 'classifier.6';
  override readonly flattenedInputs: Record<string, [number, number, number]> = { 'classifier.1': [256, 6, 6] };
  /** The convolution stack, registered as `features`. */
  readonly convs: Sequential;
  /** Average pool to 6×6 before the classifier. */
  readonly avgpool: AdaptiveAvgPool2d;
  /** Three dense layers with dropout. */
  readonly classifier: Sequential;

  constructor(options: AlexNetOptions = {}) {
    super();
    const { numClasses = 1000, inChannels = 3, dropout = 0.5, lrn = false, rng } = options;
    const conv = (i: number, o: number, k: number, stride: number, padding: number) => new Conv2d({ inChannels: i, outChannels: o, kernelSize: k, stride, padding, rng, ...z });
    const z = skipInitOptions(options.skipInit);
    const pool = () => new MaxPool2d({ kernelSize: 3, stride: 2 });
    // The paper's constants, with α scaling the sum itself as the paper writes it (PyTorch divides α by n).
    const norm = (): Module[] => (lrn ? [new LocalResponseNorm({ size: 5, alpha: 1e-4, beta: 0.75, k: 2, alphaConvention: 'paper' })] : []);
    this.convs = this.registerModule(
      'features',
      new Sequential(
        conv(inChannels, 64, 11, 4, 2),
        new ReLU(),
        ...norm(),
        pool(),
        conv(64, 192, 5, 1, 2),
        new ReLU(),
        ...norm(),
        pool(),
        conv(192, 384, 3, 1, 1),
        new ReLU(),
        conv(384, 256, 3, 1, 1),
        new ReLU(),
        conv(256, 256, 3, 1, 1),
        new ReLU(),
        pool(),
      ),
    );
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(6));
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(
        new Dropout(dropout, rng),
        new Linear({ inFeatures: 256 * 6 * 6, outFeatures: 4096, rng, ...z }),
        new ReLU(),
        new Dropout(dropout, rng),
        new Linear({ inFeatures: 4096, outFeatures: 4096, rng, ...z }),
        new ReLU(),
        new Linear({ inFeatures: 4096, outFeatures: numClasses, rng, ...z }),
      ),
    );
  }

  /** The 4096 activations of the second hidden dense layer. */
  features(x: Tensor): Tensor {
    return tf.tidy(() => forwardUpTo(this.classifier, tf.reshape(this.avgpool.forward(this.convs.forward(x)), [x.shape[0], -1]), 6));
  }
}

