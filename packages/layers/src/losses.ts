import { tf, ShapeMismatchError } from '@kiln/core';
import type { Tensor } from './module.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(x: Tensor, reduction: Reduction): Tensor {
  return reduction === 'mean' ? tf.mean(x) : reduction === 'sum' ? tf.sum(x) : x;
}

export interface CrossEntropyOptions {
  reduction?: Reduction;
  /** ε: targets become (1−ε)·onehot + ε/K (Szegedy et al., 2016). */
  labelSmoothing?: number;
}

/**
 * Softmax cross-entropy from logits [N, K] and integer class labels [N] (or one-hot/probability
 * targets [N, K]). Uses log-softmax, so it is stable for large logits.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  if (logits.rank !== 2) throw new ShapeMismatchError('crossEntropy(logits)', '[batch, classes]', logits.shape);
  const [n, k] = logits.shape;
  if (targets.shape[0] !== n) throw new ShapeMismatchError('crossEntropy(targets)', `[${n}] labels or [${n}, ${k}] probabilities`, targets.shape);
  return tf.tidy(() => {
    let target = targets.rank === 1 ? tf.oneHot(tf.cast(targets, 'int32') as tf.Tensor1D, k) : targets;
    target = tf.cast(target, 'float32');
    const eps = options.labelSmoothing ?? 0;
    if (eps > 0) target = tf.add(tf.mul(target, 1 - eps), eps / k);
    const perSample = tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1));
    return reduce(perSample, options.reduction ?? 'mean');
  });
}
