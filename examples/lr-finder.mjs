// Learning-rate range test (Smith, 2017) with @kiln/optim's findLr: the rate grows exponentially
// over a sweep of batches and the suggestion is where the smoothed loss falls fastest. The model
// and the optimizer are restored afterwards, so training can start from the suggestion.
//   node examples/lr-finder.mjs [--quick]
import { tf } from '@kiln/core';
import { DataLoader } from '@kiln/data';
import { crossEntropy } from '@kiln/layers';
import { Adam, findLr } from '@kiln/optim';
import { LeNet5 } from '@kiln/zoo';
import { fashionMnistSplits, quick, startBackend } from './shared.mjs';

await startBackend();
const { train } = await fashionMnistSplits({ limit: 2048 });
const numSteps = quick ? 20 : 100;
const batches = [];
for (const batch of new DataLoader(train, { batchSize: 64, shuffle: true })) {
  batches.push(batch);
  if (batches.length === numSteps) break;
}
const model = new LeNet5();
const optimizer = new Adam(model.trainableVariables(), { lr: 1e-3 });
const result = await findLr({
  optimizer,
  numSteps: batches.length,
  startLr: 1e-6,
  endLr: 1,
  loss: (step) => {
    const { x, y } = batches[step];
    return crossEntropy(model.forward(x), y);
  },
});
tf.dispose(batches.flatMap((b) => [b.x, b.y]));
for (let i = 0; i < result.lrs.length; i += Math.max(1, Math.floor(result.lrs.length / 10))) {
  console.error(`lr ${result.lrs[i].toExponential(1)}  loss ${result.smoothedLosses[i].toFixed(3)}`);
}
console.log(JSON.stringify({ suggestion: result.suggestion, diverged: result.diverged, steps: result.lrs.length }));
