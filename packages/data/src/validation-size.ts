import { ConfigError } from '@kiln/core';

/**
 * The fraction of the data to hold out for validation when early stopping a model with m free
 * parameters: r = 1 / √(2m) (Amari, Murata, Müller, Finke & Yang, "Asymptotic statistical theory of
 * overtraining and cross-validation", IEEE Trans. Neural Networks 8(5), 1997).
 *
 * Assumptions: an asymptotic result for m large and examples far more numerous than parameters
 * (the paper's regime is t ≫ m); a smooth, well-specified model trained to a local optimum; the
 * validation set used only to pick the stopping point. For m = 100 it gives about 7 %; for the
 * millions of weights of a CNN it goes to almost nothing, where practical minimums (a few thousand
 * examples to estimate accuracy) take over.
 */
export function validationFraction(freeParameters: number): number {
  if (!(Number.isFinite(freeParameters) && freeParameters >= 1)) throw new ConfigError('validationFraction.freeParameters', 'a number of parameters >= 1', freeParameters);
  return Math.min(1, 1 / Math.sqrt(2 * freeParameters));
}

/**
 * Guyon's scaling law for the validation/training size ratio (I. Guyon, "A scaling law for the
 * validation-set training-set size ratio", AT&T Bell Laboratories technical report, 1997): the
 * ratio v/t of validation to training examples scales like the square root of the complexity of the
 * second level of inference (choosing among models by their validation error) over that of the
 * first (fitting one model's parameters to the training set):  v/t ≈ √(c₂ / c₁).
 *
 * Assumptions: c₂ is measured like the logarithm of the number of models (hyper-parameter settings)
 * compared on the validation set, c₁ like the capacity of one model (its VC dimension, or roughly
 * its number of free parameters); error rates are counted mistakes with binomial noise and both
 * levels are bounded by guaranteed-risk bounds of Vapnik's form; the law fixes a scaling, and the
 * proportionality constant is taken to be 1. Returns the ratio and the matching validation
 * fraction v/(v + t).
 */
export function guyonRatio(secondLevelComplexity: number, firstLevelComplexity: number): {
  /** Validation to training examples, v/t. */
  ratio: number;
  /** The validation share, v/(v + t). */
  fraction: number;
} {
  if (!(Number.isFinite(secondLevelComplexity) && secondLevelComplexity > 0)) throw new ConfigError('guyonRatio.secondLevelComplexity', 'a complexity > 0 (e.g. ln of the number of models compared)', secondLevelComplexity);
  if (!(Number.isFinite(firstLevelComplexity) && firstLevelComplexity > 0)) throw new ConfigError('guyonRatio.firstLevelComplexity', 'a complexity > 0 (e.g. the VC dimension or parameter count)', firstLevelComplexity);
  const ratio = Math.sqrt(secondLevelComplexity / firstLevelComplexity);
  return { ratio, fraction: ratio / (1 + ratio) };
}
