import { tf } from '@kiln/core';
import type { Module, Tensor } from '@kiln/layers';

/**
 * A model with auxiliary classifiers on intermediate layers (GoogLeNet, Inception v3 built with
 * `auxLogits`). In training mode `forwardWithAux` returns their logits beside the main ones; in
 * eval mode only the main logits.
 */
export interface AuxiliaryHeads {
  /**
   * Runs the model on `x` and returns the main logits, plus one more `[N, numClasses]` logits
   * tensor per auxiliary head under its own key (`aux1`, `aux2`; `aux`) in training mode only.
   */
  forwardWithAux(x: Tensor): {
    /** The main classifier's logits, `[N, numClasses]`. */
    logits: Tensor;
  };
  /**
   * Weight of each auxiliary loss in the model's reference training recipe (torchvision's
   * classification references: 0.3 for GoogLeNet's two heads, 0.4 for Inception v3's one).
   */
  readonly auxLossWeight: number;
}

/** Whether `model` can return auxiliary logits (whether it built the heads shows in the outputs). */
export function hasAuxiliaryHeads(model: Module): model is Module & AuxiliaryHeads {
  const m = model as Partial<AuxiliaryHeads>;
  return typeof m.forwardWithAux === 'function' && typeof m.auxLossWeight === 'number';
}

/**
 * Main logits and the auxiliary heads' logits, in head order (`aux1`, `aux2`; `aux`). `aux` is
 * empty in eval mode or when the model was built without its heads.
 */
export function forwardWithAuxiliary(model: Module & AuxiliaryHeads, x: Tensor): {
  /** The main classifier's logits, `[N, numClasses]`. */
  logits: Tensor;
  /** Each auxiliary head's logits, `[N, numClasses]`, sorted by head key; empty when none ran. */
  aux: Tensor[];
} {
  const { logits, ...rest } = model.forwardWithAux(x) as { logits: Tensor } & Record<string, unknown>;
  const aux = Object.keys(rest)
    .sort()
    .map((k) => rest[k])
    .filter((t): t is Tensor => t instanceof tf.Tensor);
  return { logits, aux };
}
