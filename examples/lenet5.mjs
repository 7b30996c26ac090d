// LeNet-5 on Fashion-MNIST: the README's example as a script.
//   node examples/lenet5.mjs           2 epochs on 54,000 images (about a minute with oneDNN)
//   node examples/lenet5.mjs --quick   a few batches (CI)
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader } from '@kiln/data';
import { LeNet5 } from '@kiln/zoo';
import { ClassificationModule, ProgressBar, callback, createTrainer } from '@kiln/trainer';
import { budget, fashionMnistSplits } from './shared.mjs';

// The backend is a plugin of the run, like the progress bar; the trainer starts it and says which.
const trainer = createTrainer({ ...budget({ maxEpochs: 2 }), seed: 0, accelerator: 'auto', plugins: [wasmBackend(), callback(new ProgressBar())] });
await trainer.selectAccelerator();
const { train, val, test } = await fashionMnistSplits();
const module = new ClassificationModule(new LeNet5(), { lr: 1e-3 });
await trainer.fit(module, new DataLoader(train, { batchSize: 64, shuffle: true }), new DataLoader(val, { batchSize: 256 }));
const metrics = await trainer.test(module, new DataLoader(test, { batchSize: 256 }));
console.log(JSON.stringify(metrics));
