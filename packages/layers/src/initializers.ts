import { tf, defaultRng, ConfigError, type Rng } from '@kiln/core';

/**
 * An initializer makes a parameter's first value. `fanIn`/`fanOut` follow PyTorch: for a weight of
 * shape [..receptive, in, out] (Kiln's HWIO / [in, out] layouts), fanIn = in·receptive and
 * fanOut = out·receptive.
 */
export type Initializer = (shape: number[], rng?: Rng) => tf.Tensor;

/** fanIn and fanOut of a weight of this shape (see above); a 1-D shape has both equal to its length. */
export function fans(shape: readonly number[]): {
  /** Inputs feeding each output unit. */
  fanIn: number;
  /** Outputs each input unit feeds. */
  fanOut: number;
} {
  if (shape.length < 2) return { fanIn: shape[0] ?? 1, fanOut: shape[0] ?? 1 };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[shape.length - 2] * receptive, fanOut: shape[shape.length - 1] * receptive };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function fill(shape: number[], draw: () => number): tf.Tensor {
  const n = size(shape);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = draw();
  return tf.tensor(v, shape, 'float32');
}

/** All zeros. */
export const zeros = (): Initializer => (shape) => tf.zeros(shape);
/** All ones. */
export const ones = (): Initializer => (shape) => tf.ones(shape);
/** Every value `value`. */
export const constant = (value: number): Initializer => (shape) => tf.fill(shape, value);

/** U(low, high), from the seeded generator (default ±0.05, as Keras). */
export const uniform =
  (low = -0.05, high = 0.05): Initializer =>
  (shape, rng = defaultRng()) =>
    fill(shape, () => rng.uniform(low, high));

/** N(mean, std²), from the seeded generator (default std 0.05, as Keras). */
export const normal =
  (mean = 0, std = 0.05): Initializer =>
  (shape, rng = defaultRng()) =>
    fill(shape, () => rng.normal(mean, std));

/**
 * Normal redrawn until it falls in [low, high]: by default mean ± 2·std (Keras/TF convention);
 * pass absolute bounds for PyTorch's `trunc_normal_(mean, std, a, b)` (whose default is [−2, 2]).
 */
export const truncatedNormal =
  (mean = 0, std = 0.05, bounds?: [number, number]): Initializer =>
  (shape, rng = defaultRng()) => {
    const [low, high] = bounds ?? [mean - 2 * std, mean + 2 * std];
    if (!(low < high) || !(std > 0)) throw new ConfigError('truncatedNormal.bounds', 'low < high and std > 0', { bounds: [low, high], std });
    // Rejection sampling; bounds far in a tail would loop for long, so require some mass inside.
    if (high < mean - 6 * std || low > mean + 6 * std) throw new ConfigError('truncatedNormal.bounds', 'an interval within 6 std of the mean', [low, high]);
    return fill(shape, () => {
      for (;;) {
        const v = mean + std * rng.normal();
        if (v >= low && v <= high) return v;
      }
    });
  };

/** Recommended gains (PyTorch's `calculate_gain`). */
export function gain(nonlinearity: 'linear' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu', slope = 0.01): number {
  switch (nonlinearity) {
    case 'linear':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
      return Math.sqrt(2 / (1 + slope * slope));
    case 'selu':
      return 3 / 4;
  }
}

/** Glorot & Bengio (2010): U(±g·√(6/(fanIn+fanOut))). */
export const xavierUniform =
  (g = 1): Initializer =>
  (shape, rng = defaultRng()) => {
    const { fanIn, fanOut } = fans(shape);
    const a = g * Math.sqrt(6 / (fanIn + fanOut));
    return fill(shape, () => rng.uniform(-a, a));
  };

/** Glorot & Bengio (2010): N(0, g²·2/(fanIn+fanOut)). */
export const xavierNormal =
  (g = 1): Initializer =>
  (shape, rng = defaultRng()) => {
    const { fanIn, fanOut } = fans(shape);
    const std = g * Math.sqrt(2 / (fanIn + fanOut));
    return fill(shape, () => rng.normal(0, std));
  };

/** Options of the Kaiming (He et al., 2015) initializers, as PyTorch's `kaiming_*_`. */
export interface KaimingOptions {
  /** Preserve the variance of the forward pass (`fanIn`, default) or of the backward pass (`fanOut`). */
  mode?: 'fanIn' | 'fanOut';
  /** The activation that follows, which sets the gain (default `leaky_relu` with `a`, as PyTorch). */
  nonlinearity?: 'relu' | 'leaky_relu' | 'linear' | 'tanh' | 'sigmoid' | 'selu';
  /** Negative slope for leaky ReLU (PyTorch's `a`). */
  a?: number;
}

function kaimingStd(shape: number[], o: KaimingOptions): number {
  const { fanIn, fanOut } = fans(shape);
  const fan = (o.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  return gain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan);
}

/** He et al. (2015): U(±√3·gain/√fan). */
export const kaimingUniform =
  (o: KaimingOptions = {}): Initializer =>
  (shape, rng = defaultRng()) => {
    const bound = Math.sqrt(3) * kaimingStd(shape, o);
    return fill(shape, () => rng.uniform(-bound, bound));
  };

/** He et al. (2015): N(0, (gain/√fan)²). */
export const kaimingNormal =
  (o: KaimingOptions = {}): Initializer =>
  (shape, rng = defaultRng()) => {
    const std = kaimingStd(shape, o);
    return fill(shape, () => rng.normal(0, std));
  };

/** LeCun (1998): N(0, 1/fanIn). */
export const lecunNormal = (): Initializer => kaimingNormal({ nonlinearity: 'linear' });
/** LeCun uniform: U(±√(3/fanIn)). */
export const lecunUniform = (): Initializer => kaimingUniform({ nonlinearity: 'linear' });

/** Saxe et al. (2014): a (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, times `g`. */
export const orthogonal =
  (g = 1): Initializer =>
  (shape, rng = defaultRng()) => {
    if (shape.length < 2) throw new ConfigError('orthogonal.shape', 'at least 2 dimensions', shape);
    const cols = shape[shape.length - 1];
    const rows = size(shape) / cols;
    return tf.tidy(() => {
      const big = Math.max(rows, cols);
      const small = Math.min(rows, cols);
      const a = fill([big, small], () => rng.normal());
      const [q, r] = tf.linalg.qr(a as tf.Tensor2D);
      // Make the decomposition unique (sign of R's diagonal), as in Mezzadri (2007).
      const d = tf.sign(tf.stack(Array.from({ length: small }, (_, i) => r.slice([i, i], [1, 1]).reshape([]))));
      let m = tf.mul(q, d);
      if (rows < cols) m = m.transpose();
      return tf.mul(m, g).reshape(shape);
    });
  };

/**
 * PyTorch's default for Conv and Linear layers: weights kaiming_uniform(a=√5), i.e. U(±1/√fanIn),
 * and biases U(±1/√fanIn).
 */
export const torchDefaultWeight = (): Initializer => kaimingUniform({ a: Math.sqrt(5) });
/** PyTorch's default bias for Conv and Linear: U(±1/√fanIn). */
export const torchDefaultBias =
  (fanIn: number): Initializer =>
  (shape, rng = defaultRng()) => {
    const b = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    return fill(shape, () => rng.uniform(-b, b));
  };
