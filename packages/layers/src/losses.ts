import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';
import type { Tensor } from './module.js';
import { fusedCrossEntropy, hasFusedCrossEntropy } from './fused-training.js';

/** How per-element losses become the result: their mean (default), their sum, or none (kept). */
export type Reduction = 'mean' | 'sum' | 'none';

function reduce(x: Tensor, reduction: Reduction): Tensor {
  return reduction === 'mean' ? tf.mean(x) : reduction === 'sum' ? tf.sum(x) : x;
}

function sameShape(loss: string, output: Tensor, target: Tensor): void {
  if (!tf.util.arraysEqual(output.shape, target.shape)) throw new ShapeMismatchError(`${loss}(target)`, `[${output.shape.join(', ')}] (the output's shape)`, target.shape);
}

/** Options of the classification losses (`nllLoss`, and `crossEntropy` through `CrossEntropyOptions`). */
export interface ClassLossOptions {
  /** Default 'mean': with class weights, a weighted mean (divided by the summed weights of the targets), as in PyTorch. */
  reduction?: Reduction;
  /** A weight per class [K], to counter class imbalance. */
  classWeights?: Tensor | number[];
  /** Samples with this label add nothing to the loss or to the mean's denominator (PyTorch: -100). */
  ignoreIndex?: number;
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions extends ClassLossOptions {
  /** ε: targets become (1−ε)·onehot + ε/K (Szegedy et al., 2016). Default 0. */
  labelSmoothing?: number;
}

function classWeights(k: number, w: Tensor | number[] | undefined, where: string): Tensor {
  if (w === undefined) return tf.ones([k]);
  const t = Array.isArray(w) ? tf.tensor1d(w) : tf.cast(w, 'float32');
  if (t.rank !== 1 || t.shape[0] !== k) {
    t.dispose();
    throw new ShapeMismatchError(`${where}(classWeights)`, `[${k}] (one weight per class)`, Array.isArray(w) ? [w.length] : w.shape);
  }
  return t;
}

/**
 * Loss of log-probabilities [N, K] against integer labels [N]:
 * loss_i = (1−ε)·w_{y_i}·(−log p_{i,y_i}) + ε/K · Σ_c w_c·(−log p_{i,c}), and the mean divides by
 * Σ_i w_{y_i} over the samples not ignored — PyTorch's definition, so results match it exactly.
 */
function labelLoss(where: string, logp: Tensor, labels: Tensor, o: CrossEntropyOptions): Tensor {
  const [n, k] = logp.shape as number[];
  if (labels.rank !== 1 || labels.shape[0] !== n) throw new ShapeMismatchError(`${where}(targets)`, `[${n}] labels or [${n}, ${k}] probabilities`, labels.shape);
  const eps = o.labelSmoothing ?? 0;
  return tf.tidy(() => {
    const w = classWeights(k, o.classWeights, where);
    let ids = tf.cast(labels, 'int32');
    let valid: Tensor = tf.onesLike(ids).cast('float32');
    if (o.ignoreIndex !== undefined) {
      valid = tf.cast(tf.notEqual(ids, o.ignoreIndex), 'float32');
      // Any in-range stand-in works for ignored rows: their terms are multiplied by 0 below.
      ids = tf.cast(tf.mul(ids, tf.cast(valid, 'int32')), 'int32');
    }
    const onehot = tf.mul(tf.oneHot(ids as tf.Tensor1D, k), tf.expandDims(valid, 1));
    const weighted = tf.mul(logp, w);
    const targetWeight = tf.sum(tf.mul(onehot, w), 1);
    let perSample = tf.neg(tf.sum(tf.mul(onehot, weighted), 1));
    if (eps > 0) {
      const smooth = tf.mul(tf.neg(tf.sum(weighted, 1)), valid);
      perSample = tf.add(tf.mul(perSample, 1 - eps), tf.mul(smooth, eps / k));
    }
    const reduction = o.reduction ?? 'mean';
    if (reduction !== 'mean') return reduce(perSample, reduction);
    return tf.div(tf.sum(perSample), tf.sum(targetWeight));
  });
}

function checkLogits(where: string, logits: Tensor): void {
  if (logits.rank !== 2) throw new ShapeMismatchError(`${where}(logits)`, '[batch, classes]', logits.shape);
}

/**
 * Softmax cross-entropy from logits [N, K] and integer class labels [N] (or one-hot/probability
 * targets [N, K]), with optional class weights, label smoothing and an ignored label. Uses
 * log-softmax, so logits of any size (±1000) stay finite.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  checkLogits('crossEntropy', logits);
  const eps = options.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new ConfigError('crossEntropy.labelSmoothing', 'a number in [0, 1]', eps);
  const [n, k] = logits.shape;
  if (targets.rank === 1) {
    if (options.classWeights === undefined && logits.dtype === 'float32' && hasFusedCrossEntropy()) {
      if (targets.shape[0] !== n) throw new ShapeMismatchError('crossEntropy(targets)', `[${n}] labels or [${n}, ${k}] probabilities`, targets.shape);
      // One kernel each way where the backend has them (fused-training.ts); the same definition as labelLoss.
      const fused = { labelSmoothing: eps, ignoreIndex: options.ignoreIndex ?? null, reduction: options.reduction ?? 'mean' };
      if (targets.dtype === 'int32') return fusedCrossEntropy(logits, targets, fused);
      return tf.tidy(() => fusedCrossEntropy(logits, tf.cast(targets, 'int32'), fused));
    }
    return tf.tidy(() => labelLoss('crossEntropy', tf.logSoftmax(logits), targets, options));
  }
  if (!tf.util.arraysEqual(targets.shape, [n, k])) throw new ShapeMismatchError('crossEntropy(targets)', `[${n}] labels or [${n}, ${k}] probabilities`, targets.shape);
  return tf.tidy(() => {
    let target = tf.cast(targets, 'float32');
    if (eps > 0) target = tf.add(tf.mul(target, 1 - eps), eps / k);
    const w = classWeights(k, options.classWeights, 'crossEntropy');
    const perSample = tf.neg(tf.sum(tf.mul(tf.mul(target, w), tf.logSoftmax(logits)), -1));
    return reduce(perSample, options.reduction ?? 'mean');
  });
}

/** Negative log-likelihood of log-probabilities [N, K] (e.g. a LogSoftmax output) and labels [N]. */
export function nllLoss(logProbs: Tensor, labels: Tensor, options: ClassLossOptions = {}): Tensor {
  checkLogits('nllLoss', logProbs);
  return labelLoss('nllLoss', logProbs, labels, options);
}

/** Options of the element-wise losses (binary cross-entropy, MSE, hinge). */
export interface BinaryLossOptions {
  /** `mean` (default), `sum` or `none`. */
  reduction?: Reduction;
}

export interface BinaryCrossEntropyWithLogitsOptions extends BinaryLossOptions {
  /**
   * Weight of the positive term per class (the last axis), as PyTorch's `pos_weight`: above 1 it
   * raises recall of a rare label, e.g. negatives / positives of that class in the training set.
   */
  posWeight?: Tensor | number[];
}

/**
 * Binary cross-entropy from logits, any shape, targets in [0, 1] (multi-hot rows, soft labels):
 * −[p·t·log σ(x) + (1−t)·log(1−σ(x))] with p = `posWeight` (1 by default), computed as
 * (1−t)·x + (1 + (p−1)·t)·(log(1 + e^−|x|) + max(−x, 0)), which never overflows.
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, options: BinaryCrossEntropyWithLogitsOptions = {}): Tensor {
  sameShape('binaryCrossEntropyWithLogits', logits, targets);
  const k = logits.shape[logits.rank - 1] ?? 1;
  const pw = options.posWeight;
  if (pw !== undefined) {
    const shape = Array.isArray(pw) ? [pw.length] : pw.shape;
    if (shape.length !== 1 || shape[0] !== k || logits.rank === 0) throw new ShapeMismatchError('binaryCrossEntropyWithLogits(posWeight)', `[${k}] (one weight per class, the logits' last axis)`, shape);
  }
  return tf.tidy(() => {
    const t = tf.cast(targets, 'float32');
    // softplus(−x) = log(1 + e^−x), written so that no exponent is positive.
    const softplusNeg = tf.add(tf.log1p(tf.exp(tf.neg(tf.abs(logits)))), tf.relu(tf.neg(logits)));
    let loss: Tensor;
    if (pw === undefined) loss = tf.add(tf.mul(tf.sub(1, t), logits), softplusNeg);
    else {
      const p = Array.isArray(pw) ? tf.tensor1d(pw) : tf.cast(pw, 'float32');
      const weight = tf.add(1, tf.mul(tf.sub(p, 1), t));
      loss = tf.add(tf.mul(tf.sub(1, t), logits), tf.mul(weight, softplusNeg));
    }
    return reduce(loss, options.reduction ?? 'mean');
  });
}

/**
 * Binary cross-entropy from probabilities p in [0, 1]: −(t·log p + (1−t)·log(1−p)). Probabilities
 * are kept ≥ 1e-12 from 0 and 1 so a saturated output gives a large finite loss, not ∞. Prefer
 * the logits form, which is exact there.
 */
export function binaryCrossEntropy(probs: Tensor, targets: Tensor, options: BinaryLossOptions = {}): Tensor {
  sameShape('binaryCrossEntropy', probs, targets);
  return tf.tidy(() => {
    const t = tf.cast(targets, 'float32');
    const p = tf.clipByValue(probs, 1e-12, 1 - 1e-7);
    const loss = tf.neg(tf.add(tf.mul(t, tf.log(p)), tf.mul(tf.sub(1, t), tf.log(tf.sub(1, p)))));
    return reduce(loss, options.reduction ?? 'mean');
  });
}

/** Mean squared error (or its sum / elementwise values with `reduction`). */
export function mseLoss(output: Tensor, target: Tensor, options: BinaryLossOptions = {}): Tensor {
  sameShape('mseLoss', output, target);
  return tf.tidy(() => reduce(tf.squaredDifference(output, target), options.reduction ?? 'mean'));
}

/** Mean absolute error |output − target| (or its sum / elementwise values with `reduction`), as PyTorch's `l1_loss`. */
export function l1Loss(output: Tensor, target: Tensor, options: BinaryLossOptions = {}): Tensor {
  sameShape('l1Loss', output, target);
  return tf.tidy(() => reduce(tf.abs(tf.sub(output, target)), options.reduction ?? 'mean'));
}

export interface HuberLossOptions extends BinaryLossOptions {
  /** Where the loss turns from quadratic to linear (default 1); must be > 0. */
  delta?: number;
}

/**
 * Huber loss (Huber, 1964), PyTorch's `huber_loss`: with d = output − target,
 * ½d² where |d| < δ, else δ·(|d| − ½δ). Quadratic near the target, linear (so robust to outliers)
 * beyond δ; its gradient is d clipped to [−δ, δ].
 */
export function huberLoss(output: Tensor, target: Tensor, options: HuberLossOptions = {}): Tensor {
  sameShape('huberLoss', output, target);
  const delta = options.delta ?? 1;
  if (!(delta > 0)) throw new ConfigError('huberLoss.delta', 'a number > 0', delta);
  return tf.tidy(() => {
    const a = tf.abs(tf.sub(output, target));
    // min(|d|, δ) is the quadratic part; the rest of |d| is charged linearly at slope δ.
    const q = tf.minimum(a, delta);
    const loss = tf.add(tf.mul(tf.square(q), 0.5), tf.mul(tf.sub(a, q), delta));
    return reduce(loss, options.reduction ?? 'mean');
  });
}

export interface SmoothL1LossOptions extends BinaryLossOptions {
  /** Width of the quadratic zone (default 1); 0 gives the L1 loss. */
  beta?: number;
}

/**
 * Smooth L1 loss, PyTorch's `smooth_l1_loss` (Girshick, Fast R-CNN): ½d²/β where |d| < β, else
 * |d| − ½β — the Huber loss with δ = β divided by β, so its slope far from the target is 1.
 */
export function smoothL1Loss(output: Tensor, target: Tensor, options: SmoothL1LossOptions = {}): Tensor {
  const beta = options.beta ?? 1;
  if (!(beta >= 0)) throw new ConfigError('smoothL1Loss.beta', 'a number >= 0', beta);
  if (beta === 0) return l1Loss(output, target, options);
  sameShape('smoothL1Loss', output, target);
  return tf.tidy(() => tf.div(huberLoss(output, target, { delta: beta, reduction: options.reduction }), beta));
}

/** The "total error" of classic backpropagation (Rumelhart et al., 1986): E = ½·Σ(t − o)². */
export function totalError(output: Tensor, target: Tensor): Tensor {
  sameShape('totalError', output, target);
  return tf.tidy(() => tf.mul(tf.sum(tf.squaredDifference(target, output)), 0.5));
}

/** Hinge loss for scores against labels in {−1, +1}: max(0, 1 − t·x), averaged by default. */
export function hingeLoss(scores: Tensor, targets: Tensor, options: BinaryLossOptions = {}): Tensor {
  sameShape('hingeLoss', scores, targets);
  return tf.tidy(() => reduce(tf.relu(tf.sub(1, tf.mul(tf.cast(targets, 'float32'), scores))), options.reduction ?? 'mean'));
}
