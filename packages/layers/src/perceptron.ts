import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';

/** Options of {@link Perceptron}. */
export interface PerceptronOptions {
  /** Length of each input vector. */
  inFeatures: number;
  /** σ, the step size of each correction. Default 1. */
  learningRate?: number;
}

/** Options of `Perceptron.fit`. */
export interface PerceptronFitOptions {
  /** Passes over the data at most. Default 100. */
  epochs?: number;
}

/** What `Perceptron.fit` returns. */
export interface PerceptronFitResult {
  /** Misclassified samples in each pass. */
  errors: number[];
  /** Whether a pass made no mistake (the data were separated). */
  converged: boolean;
}

/**
 * Rosenblatt's perceptron (1958): h(x) = H(w·x + b) with the Heaviside step H (1 for ≥ 0), trained
 * by the error-correction rule w_i ← w_i + σ·(y − h(x))·x_i (and b ← b + σ·(y − h(x))), one sample
 * at a time. It converges in finitely many corrections when the classes are linearly separable
 * (Novikoff, 1962). Its parameters take no gradients: `fit` is its training.
 */
export class Perceptron extends Module {
  /** The options with every default filled in. */
  readonly config: Required<PerceptronOptions>;
  /** w, `[inFeatures]`. */
  readonly weight: Parameter;
  /** b, a scalar. */
  readonly bias: Parameter;

  constructor(options: PerceptronOptions) {
    super();
    if (!Number.isInteger(options.inFeatures) || options.inFeatures < 1) throw new ConfigError('Perceptron.inFeatures', 'a positive integer', options.inFeatures);
    this.config = { learningRate: 1, ...options };
    if (!(this.config.learningRate > 0)) throw new ConfigError('Perceptron.learningRate', 'a positive number', this.config.learningRate);
    this.weight = this.registerParameter('weight', tf.zeros([options.inFeatures]), { trainable: false });
    this.bias = this.registerParameter('bias', tf.zeros([]), { trainable: false });
  }

  /** h(x) ∈ {0, 1} for x of shape [N, inFeatures]. */
  forward(x: Tensor): Tensor {
    this.expectShape(x, 2, { 1: this.config.inFeatures }, '[batch, features]');
    return tf.tidy(() => {
      const z = tf.add(tf.sum(tf.mul(x, this.weight.variable), 1), this.bias.variable);
      return tf.cast(tf.greaterEqual(z, 0), 'float32');
    });
  }

  /** Trains on x [N, inFeatures] and labels y [N] in {0, 1}, in order, until a pass has no error. */
  fit(x: Tensor, y: Tensor, options: PerceptronFitOptions = {}): PerceptronFitResult {
    this.expectShape(x, 2, { 1: this.config.inFeatures }, '[batch, features]');
    const [n, d] = x.shape as number[];
    if (y.rank !== 1 || y.shape[0] !== n) throw new ShapeMismatchError(`${this.describe()}.fit(y)`, `[${n}] labels in {0, 1}`, y.shape);
    const xs = x.dataSync();
    const ys = y.dataSync();
    if (ys.some((v) => v !== 0 && v !== 1)) throw new ConfigError(`${this.describe()}.fit(y)`, 'labels in {0, 1}', Array.from(ys.slice(0, 8)));
    // The rule is sequential and scalar, so it runs on the host and writes the result back once.
    const w = Float64Array.from(this.weight.variable.dataSync());
    let b = this.bias.variable.dataSync()[0];
    const sigma = this.config.learningRate;
    const errors: number[] = [];
    for (let epoch = 0; epoch < (options.epochs ?? 100); epoch++) {
      let mistakes = 0;
      for (let i = 0; i < n; i++) {
        let z = b;
        for (let j = 0; j < d; j++) z += w[j] * xs[i * d + j];
        const delta = ys[i] - (z >= 0 ? 1 : 0);
        if (delta === 0) continue;
        mistakes++;
        for (let j = 0; j < d; j++) w[j] += sigma * delta * xs[i * d + j];
        b += sigma * delta;
      }
      errors.push(mistakes);
      if (mistakes === 0) break;
    }
    tf.tidy(() => {
      this.weight.assign(tf.tensor1d(Float32Array.from(w)));
      this.bias.assign(tf.scalar(b));
    });
    return { errors, converged: errors[errors.length - 1] === 0 };
  }
}
