// A callback of your own: measures training throughput per epoch and keeps its history in
// checkpoints (docs/custom-callbacks.md explains each part).
//   node examples/custom-callback.mjs [--quick]
import { DataLoader } from '@kiln/data';
import { LeNet5 } from '@kiln/zoo';
import { ClassificationModule, callback, createTrainer } from '@kiln/trainer';
import { budget, fashionMnistSplits, startBackend } from './shared.mjs';

/** Samples per second of each training epoch, from the batches the trainer hands it. */
class ThroughputMeter {
  /** Key of its state in checkpoints. */
  stateKey = 'ThroughputMeter';
  /** Samples/s of every finished epoch, across resumes. */
  history = [];
  #samples = 0;
  #started = 0;

  onTrainEpochStart() {
    this.#samples = 0;
    this.#started = performance.now();
  }

  onTrainBatchEnd(_trainer, _module, _outputs, batch) {
    this.#samples += batch.x.shape[0];
  }

  onTrainEpochEnd(trainer) {
    const rate = this.#samples / ((performance.now() - this.#started) / 1000);
    this.history.push(rate);
    console.error(`epoch ${trainer.currentEpoch + 1}: ${Math.round(rate)} samples/s`);
  }

  stateDict() {
    return { history: this.history };
  }

  loadStateDict(state) {
    this.history = [...state.history];
  }
}

await startBackend();
const { train, val } = await fashionMnistSplits();
const meter = new ThroughputMeter();
const trainer = createTrainer({ ...budget({ maxEpochs: 2 }), seed: 0, plugins: [callback(meter)] });
await trainer.fit(new ClassificationModule(new LeNet5(), { lr: 1e-3 }), new DataLoader(train, { batchSize: 64, shuffle: true }), new DataLoader(val, { batchSize: 256 }));
if (meter.history.length === 0 || !meter.history.every((r) => r > 0)) throw new Error(`no throughput measured: ${meter.history}`);
console.log(JSON.stringify({ samplesPerSecond: meter.history.map(Math.round) }));
