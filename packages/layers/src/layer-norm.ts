import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';
import { standardize } from './normalization-utils.js';

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** The trailing dims normalised together (e.g. the channel count, or [H, W, C]). */
  normalizedShape: number | number[];
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Learn a per-element scale (`weight`, init 1) and shift (`bias`, init 0). Default true. */
  elementwiseAffine?: boolean;
}

/**
 * Layer normalisation (Ba et al., 2016): each sample is standardised over its trailing
 * `normalizedShape` dims, then scaled and shifted elementwise. Same in training and eval.
 */
export class LayerNorm extends Module {
  /** The options with every default filled in. */
  readonly config: {
    /** The trailing dims normalised over. */
    normalizedShape: number[];
    /** Added to the variance. */
    eps: number;
    /** Whether there are a learned scale and shift. */
    elementwiseAffine: boolean;
  };
  /** Learned scale γ, of `normalizedShape` (with `elementwiseAffine`). */
  readonly weight?: Parameter;
  /** Learned shift β, of `normalizedShape` (with `elementwiseAffine`). */
  readonly bias?: Parameter;

  constructor(options: LayerNormOptions | number | number[]) {
    super();
    const o = typeof options === 'number' || Array.isArray(options) ? { normalizedShape: options } : options;
    const normalizedShape = typeof o.normalizedShape === 'number' ? [o.normalizedShape] : [...o.normalizedShape];
    if (normalizedShape.length === 0 || normalizedShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new ConfigError('LayerNorm.normalizedShape', 'a positive integer or a non-empty list of them', o.normalizedShape);
    }
    this.config = { normalizedShape, eps: o.eps ?? 1e-5, elementwiseAffine: o.elementwiseAffine ?? true };
    if (this.config.elementwiseAffine) {
      this.weight = this.registerParameter('weight', tf.ones(normalizedShape));
      this.bias = this.registerParameter('bias', tf.zeros(normalizedShape));
    }
  }

  forward(x: Tensor): Tensor {
    const ns = this.config.normalizedShape;
    const lead = x.rank - ns.length;
    if (lead < 1 || ns.some((d, i) => x.shape[lead + i] !== d)) throw new ShapeMismatchError(this.describe(), `[batch, …, ${ns.join(', ')}]`, x.shape);
    return tf.tidy(() => {
      const y = standardize(
        x,
        ns.map((_, i) => lead + i),
        this.config.eps,
      );
      return this.weight && this.bias ? tf.add(tf.mul(y, this.weight.variable), this.bias.variable) : y;
    });
  }
}
