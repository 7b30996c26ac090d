import { tf, ConfigError, LINEAR_KERNEL, type Rng } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { torchDefaultBias, torchDefaultWeight, type Initializer } from './initializers.js';
import type { Regularizer } from './regularizers.js';
import { backendHas, fusedLinear, type FusedActivation } from './fused-training.js';

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Size of each input example's last axis. */
  inFeatures: number;
  /** Size of each output example. */
  outFeatures: number;
  /** Add a learned bias (default true). */
  bias?: boolean;
  /** Initial weights (default PyTorch's: Kaiming-uniform with a = √5). */
  weightInit?: Initializer;
  /** Initial bias (default PyTorch's: U(−1/√inFeatures, 1/√inFeatures)). */
  biasInit?: Initializer;
  /** Penalty on the weights added to the training loss. */
  weightRegularizer?: Regularizer;
  /** Penalty on the bias added to the training loss. */
  biasRegularizer?: Regularizer;
  /** Generator for the initial values (default: the global seeded one). */
  rng?: Rng;
}

/** y = x·W + b with W stored `[inFeatures, outFeatures]` (PyTorch stores the transpose). */
export class Linear extends Module {
  /** The layer's shape: the options that define it. */
  readonly config: {
    /** Input features. */
    inFeatures: number;
    /** Output features. */
    outFeatures: number;
    /** Whether there is a bias. */
    bias: boolean;
  };
  /** `[inFeatures, outFeatures]`. */
  readonly weight: Parameter;
  /** `[outFeatures]`, unless `bias: false`. */
  readonly bias?: Parameter;

  constructor(options: LinearOptions) {
    super();
    const { inFeatures, outFeatures } = options;
    if (!Number.isInteger(inFeatures) || inFeatures < 1) throw new ConfigError('Linear.inFeatures', 'a positive integer', inFeatures);
    if (!Number.isInteger(outFeatures) || outFeatures < 1) throw new ConfigError('Linear.outFeatures', 'a positive integer', outFeatures);
    this.config = { inFeatures, outFeatures, bias: options.bias ?? true };
    this.weight = this.registerParameter('weight', (options.weightInit ?? torchDefaultWeight())([inFeatures, outFeatures], options.rng), {
      regularizer: options.weightRegularizer,
    });
    if (this.config.bias) {
      this.bias = this.registerParameter('bias', (options.biasInit ?? torchDefaultBias(inFeatures))([outFeatures], options.rng), {
        regularizer: options.biasRegularizer,
      });
    }
  }

  forward(x: Tensor): Tensor {
    return this.forwardFused(x, 'linear');
  }

  /**
   * x·W + b and an optional ReLU as one fused kernel: in training, @kiln/core's `LINEAR_KERNEL`
   * where the backend registers it (its gradient is registered by kernel name, fused-training.ts),
   * otherwise separate ops; in eval mode tfjs's `_FusedMatMul`.
   */
  forwardFused(x: Tensor, activation: FusedActivation): Tensor {
    this.expectShape(x, 2, { 1: this.config.inFeatures }, '[batch, features]');
    if (x.dtype === 'float32' && backendHas(LINEAR_KERNEL)) return fusedLinear(x, this.weight.variable, this.bias?.variable, activation);
    if (!this.training) {
      return tf.fused.matMul({ a: x as tf.Tensor2D, b: this.weight.variable as tf.Tensor2D, bias: this.bias?.variable, activation });
    }
    return tf.tidy(() => {
      const y = tf.matMul(x as tf.Tensor2D, this.weight.variable as tf.Tensor2D);
      const z = this.bias ? tf.add(y, this.bias.variable) : y;
      return activation === 'relu' ? tf.relu(z) : z;
    });
  }
}

/** Keras's name for the same layer. */
export { Linear as Dense };
