// TypeScript (ESM) consumer: a typed custom callback and a short LeNet-5 run. Type-checked under
// moduleResolution node16, nodenext and bundler, then compiled and run.
import { BackendRegistry, type Tensor } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { ArrayDataset, DataLoader, type Batch } from '@kiln/data';
import { LeNet5, type ZooModel } from '@kiln/zoo';
import { Adam } from '@kiln/optim';
import { ClassificationModule, callback, createTrainer, type Callback, type Trainer, type TrainingModule } from '@kiln/trainer';
import { synthetic } from './synthetic.cjs';

class StepCounter implements Callback {
  steps = 0;
  onTrainBatchEnd(trainer: Trainer, _module: TrainingModule, _outputs: unknown, batch: Batch): void {
    const x: Tensor = batch.x;
    if (x.shape[0] !== 16 || !Number.isFinite(trainer.lastTrainMetrics.train_loss)) throw new Error('unexpected batch');
    this.steps++;
  }
}

const { name } = await new BackendRegistry([wasmBackend()]).use('auto');
const d = synthetic(64, 10, 3);
const model: ZooModel = new LeNet5();
const counter = new StepCounter();
const trainer = createTrainer({ maxEpochs: 1, limitTrainBatches: 3, numSanityValSteps: 0, plugins: [callback(counter)] });
const module = new ClassificationModule(model, { optimizer: (m) => new Adam(m.trainableVariables(), { lr: 1e-3 }) });
await trainer.fit(module, new DataLoader(new ArrayDataset(d.x, d.y, d.shape), { batchSize: 16 }));
if (counter.steps !== 3) throw new Error(`expected 3 steps, got ${counter.steps}`);
console.log(`train.mts: ok on ${name} (node ${process.version})`);
