import { Rng } from './rng.js';

/**
 * The process-wide default generator, like `torch.manual_seed`'s: layers use it for initial weights
 * when the caller passes no generator of its own. `manualSeed` resets it; the Trainer seeds it from
 * its `seed` option and stores its state in checkpoints.
 */
const defaultGenerator = new Rng(0);

/** The process-wide seeded generator that initializers, shuffling and dropout use unless given their own. */
export function defaultRng(): Rng {
  return defaultGenerator;
}

/** Re-seeds the default generator (PyTorch's `manual_seed`) and returns it. */
export function manualSeed(seed: number): Rng {
  defaultGenerator.reseed(seed);
  return defaultGenerator;
}
