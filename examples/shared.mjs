// What every example shares: the budget and the data. `--quick` (CI) trains on a few hundred
// Fashion-MNIST images for a few batches; without it each example runs its full-size version.
import { BackendRegistry } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { fashionMnist, holdOut } from '@kiln/data';

export const quick = process.argv.includes('--quick');

/** Picks the fastest CPU backend and says which (oneDNN-backed WASM where the addon is built). */
export async function startBackend() {
  const { name, info } = await new BackendRegistry([wasmBackend()]).use('auto');
  console.error(`backend: ${name} — ${info.device}`);
  return name;
}

/**
 * Fashion-MNIST (found locally or downloaded, see docs/data.md): train/val/test splits, cut to
 * `limit` training examples under --quick.
 */
export async function fashionMnistSplits({ limit = 1024 } = {}) {
  let train = await fashionMnist('train');
  let test = await fashionMnist('test');
  if (quick) {
    train = train.subset(Array.from({ length: limit }, (_, i) => i));
    test = test.subset(Array.from({ length: 256 }, (_, i) => i));
  }
  const [fit, val] = holdOut(train, 0.1);
  return { train: fit, val, test };
}

/** The trainer budget: full runs as given, --quick runs a handful of batches. */
export function budget(full) {
  return quick ? { ...full, maxEpochs: 1, limitTrainBatches: 8, limitValBatches: 2, limitTestBatches: 2, numSanityValSteps: 0 } : full;
}
