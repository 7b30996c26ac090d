// TypeScript (ESM) consumer: a typed custom callback and a short LeNet-5 run. Type-checked under
// moduleResolution node16, nodenext and bundler, then compiled and run.
import type { BackendChoice, Tensor } from '@kiln/core';
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

// The backend is a plugin of the run; the trainer starts it before the model is built.
const counter = new StepCounter();
const trainer = createTrainer({ maxEpochs: 1, limitTrainBatches: 3, numSanityValSteps: 0, accelerator: 'auto', plugins: [wasmBackend(), callback(counter)] });
const { name }: BackendChoice = await trainer.selectAccelerator();
const d = synthetic(64, 10, 3);
const model: ZooModel = new LeNet5();
const module = new ClassificationModule(model, { optimizer: (m) => new Adam(m.trainableVariables(), { lr: 1e-3 }) });
await trainer.fit(module, new DataLoader(new ArrayDataset(d.x, d.y, d.shape), { batchSize: 16 }));
if (counter.steps !== 3) throw new Error(`expected 3 steps, got ${counter.steps}`);
if (trainer.accelerator?.name !== 'wasm') throw new Error(`expected the wasm backend, got ${trainer.accelerator?.name}`);
console.log(`train.mts: ok on ${name} (node ${process.version})`);
