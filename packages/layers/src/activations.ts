import { tf, defaultRng, ConfigError, type Rng } from '@kiln/core';
import { Module, type Tensor } from './module.js';
import type { Parameter } from './parameter.js';

/*
 * Element-wise activation functions, usable directly or through the modules below. Each is written
 * with ops whose gradients tfjs defines, so every one of them trains.
 */

/** x unchanged (a copy, so the caller may dispose either). */
export const identity = (x: Tensor): Tensor => tf.clone(x);
/** Heaviside step: 1 where x ≥ 0, else 0 (zero gradient; Rosenblatt's perceptron output). */
export const binaryStep = (x: Tensor): Tensor => tf.tidy(() => tf.cast(tf.greaterEqual(x, 0), 'float32'));
/** Logistic sigmoid 1 / (1 + e^−x). */
export const sigmoid = (x: Tensor): Tensor => tf.sigmoid(x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => tf.tanh(x);
/** LeCun et al. (1998) "Efficient BackProp": f(x) = A·tanh(S·x) with A = 1.7159, S = 2/3, so f(±1) ≈ ±1. */
export const lecunTanh = (x: Tensor): Tensor => tf.tidy(() => tf.mul(tf.tanh(tf.mul(x, 2 / 3)), 1.7159));
/** arctan(x), a bounded S-curve in (−π/2, π/2). */
export const arctan = (x: Tensor): Tensor => tf.atan(x);
/** x / (1 + |x|) */
export const softsign = (x: Tensor): Tensor => tf.tidy(() => tf.div(x, tf.add(tf.abs(x), 1)));
/** log(1 + eˣ), computed stably. */
export const softplus = (x: Tensor): Tensor => tf.softplus(x);
/** max(0, x). */
export const relu = (x: Tensor): Tensor => tf.relu(x);
/** min(max(x, 0), 6) (MobileNet). */
export const relu6 = (x: Tensor): Tensor => tf.relu6(x);
/** x for x > 0, slope·x otherwise (Maas et al., 2013). */
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => tf.leakyRelu(x, slope);
/** x for x > 0, α(eˣ − 1) otherwise (Clevert et al., 2016). */
export const elu = (x: Tensor, alpha = 1): Tensor =>
  // relu(x) + α(e^min(x,0) − 1): each term vanishes on the other side of 0, exp never overflows,
  // and every op has a gradient (tfjs cannot differentiate through a comparison used by `where`).
  tf.tidy(() => tf.add(tf.relu(x), tf.mul(tf.sub(tf.exp(tf.minimum(x, 0)), 1), alpha)));
/** Klambauer et al. (2017) constants, as PyTorch's SELU. */
export const SELU_ALPHA = 1.6732632423543772;
/** SELU's output scale λ (Klambauer et al., 2017). */
export const SELU_SCALE = 1.0507009873554805;
/** Scaled ELU (Klambauer et al., 2017): SELU_SCALE · elu(x, SELU_ALPHA), self-normalising. */
export const selu = (x: Tensor): Tensor => tf.tidy(() => tf.mul(elu(x, SELU_ALPHA), SELU_SCALE));
/**
 * Hendrycks & Gimpel (2016): x·Φ(x), exactly with erf, or PyTorch's `approximate='tanh'` form
 * 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
 */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor =>
  tf.tidy(() => {
    if (approximate === 'tanh') {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  });
/** Gaussian radial activation e^(−x²). */
export const gaussian = (x: Tensor): Tensor => tf.tidy(() => tf.exp(tf.neg(tf.square(x))));
/** x where x > threshold, else `value` (PyTorch's Threshold). */
export const threshold = (x: Tensor, thresholdAt: number, value: number): Tensor =>
  tf.tidy(() => {
    // step() is 1 above the threshold and 0 elsewhere, with a zero gradient.
    const above = tf.step(tf.sub(x, thresholdAt));
    return tf.add(tf.mul(above, x), tf.mul(tf.sub(1, above), value));
  });
/** x·σ(x) (SiLU / swish). */
export const silu = (x: Tensor): Tensor => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
/** x·tanh(softplus(x)) (Misra, 2019). */
export const mish = (x: Tensor): Tensor => tf.tidy(() => tf.mul(x, tf.tanh(tf.softplus(x))));
/** clip(x, min, max). */
export const hardtanh = (x: Tensor, min = -1, max = 1): Tensor => tf.tidy(() => tf.minimum(tf.maximum(x, min), max));
/** log σ(x) = −softplus(−x), stable for large |x|. */
export const logSigmoid = (x: Tensor): Tensor => tf.tidy(() => tf.neg(tf.softplus(tf.neg(x))));
/** Softmax along `axis` (default the last). */
export const softmax = (x: Tensor, axis = -1): Tensor => tf.softmax(x, axis);
/** log(softmax(x)) along `axis`, computed stably. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => tf.logSoftmax(x, axis);
/**
 * Maxout (Goodfellow et al., 2013): the maximum over each run of `pieces` consecutive features of
 * the last axis, so C features become C / pieces.
 */
export function maxout(x: Tensor, pieces: number): Tensor {
  const c = x.shape[x.rank - 1] as number;
  if (!Number.isInteger(pieces) || pieces < 1 || c % pieces) throw new ConfigError('maxout.pieces', `a positive divisor of the feature count (${c})`, pieces);
  return tf.tidy(() => tf.max(tf.reshape(x, [...(x.shape as number[]).slice(0, -1), c / pieces, pieces]), -1));
}

/** An activation as a module with no state: the class below is one line per function. */
abstract class Elementwise extends Module {
  /** The element-wise function this module applies. */
  protected abstract apply(x: Tensor): Tensor;
  forward(x: Tensor): Tensor {
    return this.apply(x);
  }
}

/** The `identity` activation as a module. */
export class Identity extends Elementwise {
  /** Applies `identity`. */
  protected apply = identity;
}
/** The `binaryStep` activation as a module. */
export class BinaryStep extends Elementwise {
  /** Applies `binaryStep`. */
  protected apply = binaryStep;
}
/** The `sigmoid` activation as a module. */
export class Sigmoid extends Elementwise {
  /** Applies `sigmoid`. */
  protected apply = sigmoid;
}
/** The `tanh` activation as a module. */
export class Tanh extends Elementwise {
  /** Applies `tanh`. */
  protected apply = tanh;
}
/** The `lecunTanh` activation as a module. */
export class LeCunTanh extends Elementwise {
  /** Applies `lecunTanh`. */
  protected apply = lecunTanh;
}
/** The `arctan` activation as a module. */
export class Arctan extends Elementwise {
  /** Applies `arctan`. */
  protected apply = arctan;
}
/** The `softsign` activation as a module. */
export class Softsign extends Elementwise {
  /** Applies `softsign`. */
  protected apply = softsign;
}
/** The `softplus` activation as a module. */
export class Softplus extends Elementwise {
  /** Applies `softplus`. */
  protected apply = softplus;
}
/** The `relu` activation as a module. */
export class ReLU extends Elementwise {
  /** Applies `relu`. */
  protected apply = relu;
}
/** The `relu6` activation as a module. */
export class ReLU6 extends Elementwise {
  /** Applies `relu6`. */
  protected apply = relu6;
}
/** The `selu` activation as a module. */
export class SELU extends Elementwise {
  /** Applies `selu`. */
  protected apply = selu;
}
/** The `gaussian` activation as a module. */
export class Gaussian extends Elementwise {
  /** Applies `gaussian`. */
  protected apply = gaussian;
}
/** The `silu` activation as a module. */
export class SiLU extends Elementwise {
  /** Applies `silu`. */
  protected apply = silu;
}
/** The `mish` activation as a module. */
export class Mish extends Elementwise {
  /** Applies `mish`. */
  protected apply = mish;
}
/** The `logSigmoid` activation as a module. */
export class LogSigmoid extends Elementwise {
  /** Applies `logSigmoid`. */
  protected apply = logSigmoid;
}

export class LeakyReLU extends Module {
  /** @param negativeSlope slope for x < 0 (PyTorch default 0.01). */
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
}

/** ELU (Clevert et al., 2015): x for x > 0, α(eˣ − 1) otherwise. */
export class ELU extends Module {
  /** @param alpha the negative saturation value −α (default 1). */
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }
}

/** GELU (Hendrycks & Gimpel, 2016): x·Φ(x), exactly or with the tanh approximation. */
export class GELU extends Module {
  /** @param approximate `'none'` (erf, the default) or `'tanh'`, as in PyTorch. */
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }
}

/** x where x > threshold, else `value` (PyTorch's `Threshold`). */
export class Threshold extends Module {
  /**
   * @param threshold inputs at or below it are replaced
   * @param value what replaces them
   */
  constructor(readonly threshold: number, readonly value: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return threshold(x, this.threshold, this.value);
  }
}

/** x clipped to [min, max]. */
export class Hardtanh extends Module {
  /**
   * @param min lower bound (default −1)
   * @param max upper bound (default 1)
   */
  constructor(readonly min = -1, readonly max = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return hardtanh(x, this.min, this.max);
  }
}

export class Maxout extends Module {
  /** @param pieces linear pieces per output feature (consecutive features of the last axis). */
  constructor(readonly pieces: number) {
    super();
    if (!Number.isInteger(pieces) || pieces < 1) throw new ConfigError('Maxout.pieces', 'a positive integer', pieces);
  }
  forward(x: Tensor): Tensor {
    const c = x.shape[x.rank - 1] as number;
    if (c % this.pieces) this.expectShape(x, x.rank, { [x.rank - 1]: Math.ceil(c / this.pieces) * this.pieces }, `last axis a multiple of ${this.pieces}`);
    return maxout(x, this.pieces);
  }
}

export class Softmax extends Module {
  constructor(private readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.axis);
  }
}

export class LogSoftmax extends Module {
  constructor(private readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return logSoftmax(x, this.axis);
  }
}

/** Options of {@link PReLU}. */
export interface PReLUOptions {
  /** 1 (one slope shared by all channels) or the channel count (one per channel, last axis). Default 1. */
  numParameters?: number;
  /** Initial slope. Default 0.25 (He et al., 2015). */
  init?: number;
}

/** Parametric ReLU (He et al., 2015): max(0, x) + a·min(0, x) with a learned slope `weight`. */
export class PReLU extends Module {
  /** The learned negative slopes: one, or one per channel. */
  readonly weight: Parameter;
  /** The options with their defaults filled in. */
  readonly config: Required<PReLUOptions>;

  constructor(options: PReLUOptions = {}) {
    super();
    this.config = { numParameters: 1, init: 0.25, ...options };
    if (!Number.isInteger(this.config.numParameters) || this.config.numParameters < 1) throw new ConfigError('PReLU.numParameters', 'a positive integer', this.config.numParameters);
    this.weight = this.registerParameter('weight', tf.fill([this.config.numParameters], this.config.init));
  }

  forward(x: Tensor): Tensor {
    const n = this.config.numParameters;
    if (n > 1) this.expectShape(x, Math.max(x.rank, 2), { [Math.max(x.rank, 2) - 1]: n }, 'channels last');
    return tf.tidy(() => tf.add(tf.relu(x), tf.mul(this.weight.variable, tf.minimum(x, 0))));
  }
}

/** Options of {@link RReLU}. */
export interface RReLUOptions {
  /** Lower bound of the random slope. Default 1/8. */
  lower?: number;
  /** Upper bound of the random slope. Default 1/3. */
  upper?: number;
  /** Generator for the slopes (default: the global seeded one). */
  rng?: Rng;
}

/**
 * Randomized leaky ReLU (Xu et al., 2015): in training each negative input gets a slope drawn from
 * U(lower, upper); in eval the slope is the mean (lower + upper) / 2.
 */
export class RReLU extends Module {
  /** Lower bound of the random slope. */
  readonly lower: number;
  /** Upper bound of the random slope. */
  readonly upper: number;
  private readonly rng?: Rng;

  constructor(options: RReLUOptions = {}) {
    super();
    this.lower = options.lower ?? 1 / 8;
    this.upper = options.upper ?? 1 / 3;
    if (!(this.lower <= this.upper)) throw new ConfigError('RReLU.upper', `at least lower (${this.lower})`, this.upper);
    this.rng = options.rng;
  }

  forward(x: Tensor): Tensor {
    if (!this.training) return leakyRelu(x, (this.lower + this.upper) / 2);
    const seed = (this.rng ?? defaultRng()).seed();
    return tf.tidy(() => {
      const slope = tf.randomUniform(x.shape, this.lower, this.upper, 'float32', seed);
      return tf.add(tf.relu(x), tf.mul(slope, tf.minimum(x, 0)));
    });
  }
}
