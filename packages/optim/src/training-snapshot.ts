import { tf, ConfigError } from '@kiln/core';
import type { Optimizer } from './optimizer.js';

/** A copy of what trial training steps change, put back by {@link TrainingSnapshot.restore}. */
export interface TrainingSnapshot {
  /** Puts every variable and the optimizer back as they were, and frees the copies. Call once. */
  restore(): void;
}

/**
 * Copies the optimizer's parameters, its state (slots, step count, rates) and any `extra`
 * variables the forward passes change (batch-norm running statistics), so that trial steps — a
 * learning-rate range test, a batch-size search — leave no trace. Slots created after the
 * snapshot are freed on restore, since the optimizer's `loadStateDict` replaces every slot.
 */
export function snapshotTraining(optimizer: Optimizer, extra: readonly tf.Variable[] = []): TrainingSnapshot {
  if (!optimizer || !Array.isArray(optimizer.paramGroups)) throw new ConfigError('snapshotTraining.optimizer', 'a Kiln optimizer', optimizer);
  if (!Array.isArray(extra)) throw new ConfigError('snapshotTraining.extra', 'an array of variables', extra);
  const vars = [...new Set([...optimizer.paramGroups.flatMap((g) => g.params), ...extra])];
  const saved = vars.map((v) => tf.clone(v));
  const state = optimizer.stateDict();
  const savedState = { ...state, groups: state.groups.map((g) => ({ ...g, hyper: { ...g.hyper } })), slots: Object.fromEntries(Object.entries(state.slots).map(([k, t]) => [k, tf.clone(t)])) };
  let done = false;
  return {
    restore() {
      if (done) return;
      done = true;
      vars.forEach((v, i) => v.assign(saved[i]));
      tf.dispose(saved);
      // In a tidy scope: temporaries made while recreating slots are freed (variables survive tidy).
      tf.tidy(() => optimizer.loadStateDict(savedState));
      tf.dispose(Object.values(savedState.slots));
    },
  };
}
