// Learning-rate range test (Smith, 2017) with the Tuner from @kiln/trainer: the rate grows
// exponentially over a sweep of batches and the suggestion is where the smoothed loss falls
// fastest. Weights, batch-norm statistics, the optimizer, the generator and the loader are put
// back afterwards, so training can start from the suggestion. The sweep's plot is written to
// lr-find.png in the system's temporary directory.
//   node examples/lr-finder.mjs [--quick]
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataLoader } from '@kiln/data';
import { ClassificationModule, Tuner, lrFindChart } from '@kiln/trainer';
import { LeNet5 } from '@kiln/zoo';
import { fashionMnistSplits, quick, startBackend } from './shared.mjs';

await startBackend();
const { train } = await fashionMnistSplits({ limit: 2048 });
const module = new ClassificationModule(new LeNet5(), { lr: 1e-3 });
const loader = new DataLoader(train, { batchSize: 64, shuffle: true, seed: 0 });
const result = await new Tuner().lrFind(module, loader, { startLr: 1e-6, endLr: 1, numSteps: quick ? 20 : 100 });
for (let i = 0; i < result.lrs.length; i += Math.max(1, Math.floor(result.lrs.length / 10))) {
  console.error(`lr ${result.lrs[i].toExponential(1)}  loss ${result.smoothedLosses[i].toFixed(3)}`);
}
const plot = path.join(os.tmpdir(), 'lr-find.png');
writeFileSync(plot, lrFindChart(result).png());
console.error(`plot: ${plot}`);
module.model.dispose();
console.log(JSON.stringify({ suggestion: result.suggestion, diverged: result.diverged, steps: result.lrs.length }));
