/**
 * The playground page: pick a model, backend and hyper-parameters, train in the tab with Kiln's
 * Trainer (checkpoints in IndexedDB), watch the curves, resume after a reload, download or upload
 * a checkpoint, inspect the confusion matrix and sample predictions. The entries (`main.ts`, all
 * models and backends; `lenet5.ts`, the lean page) say which models and backends it offers.
 */
import { tf, type BackendProvider } from '@kiln/core';
import { IndexedDbStorage, downloadFile } from '@kiln/trainer';
import type { ZooEntry } from '@kiln/zoo';
import { ChartLogger } from './chart-logger.js';
import { LineChart } from './line-chart.js';
import { renderConfusion, renderSamples } from './results-view.js';
import { checkpointDir, playgroundRun, predictValidation, weightsDigest, type PlaygroundRun, type RunOptions } from './run.js';
import { loadSubset, type Subset } from './subset.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('controls');
const status = $<HTMLElement>('status');
const trainButton = $<HTMLButtonElement>('train');
const resumeButton = $<HTMLButtonElement>('resume');
const stopButton = $<HTMLButtonElement>('stop');
const downloadButton = $<HTMLButtonElement>('download-ckpt');
const uploadInput = $<HTMLInputElement>('upload-ckpt');
const lossChart = new LineChart($<HTMLCanvasElement>('loss-chart'));
const accChart = new LineChart($<HTMLCanvasElement>('acc-chart'), [0, 1]);

/** What a page offers. */
export interface PageConfig {
  /** Models by name (the first is selected). */
  models: Record<string, ZooEntry>;
  /** Backend plugins for the runs (the `#backend` choices without one here are removed). */
  backends: BackendProvider[];
  /** URL prefix of the data subset (`data/`) and the .wasm files (`wasm/`). */
  assets: string;
}

let config: PageConfig;
/** Checkpoints survive reloads here; `kiln-playground` keeps them apart from other Kiln pages. */
const storage = new IndexedDbStorage({ database: 'kiln-playground' });
let subset: Subset | undefined;
let running: PlaygroundRun | undefined;

function setStatus(state: 'idle' | 'loading' | 'training' | 'done' | 'error', text: string, data: Record<string, string> = {}): void {
  status.dataset.state = state;
  for (const [k, v] of Object.entries(data)) status.dataset[k] = v;
  status.textContent = text;
}

function readOptions(): RunOptions & { backend: string } {
  const f = new FormData(form);
  const num = (k: string) => Number(f.get(k));
  return {
    model: String(f.get('model')),
    backend: String(f.get('backend')),
    batchSize: num('batchSize'),
    lr: num('lr'),
    epochs: num('epochs'),
    trainExamples: num('trainExamples'),
    testExamples: num('testExamples'),
    augment: { flip: f.has('flip'), shift: f.has('shift') },
    seed: 0,
    pauseAfter: num('pauseAfter'),
  };
}

const lastCheckpoint = (model: string) => `${checkpointDir(model)}/last.ckpt`;

async function refreshButtons(): Promise<void> {
  const has = await storage.exists(lastCheckpoint(readOptions().model));
  resumeButton.disabled = !has || running !== undefined;
  downloadButton.disabled = !has;
}

/** Trains a fresh model (`resume` false; earlier checkpoints of the model are deleted) or continues from its last checkpoint. */
async function train(resume: boolean): Promise<void> {
  if (!subset || running) return;
  const options = readOptions();
  if (!(options.batchSize >= 1 && options.lr > 0 && options.epochs >= 1 && options.trainExamples >= options.batchSize && options.testExamples >= 1)) {
    setStatus('error', 'batch size, learning rate, epochs and example counts must be positive, with at least one batch of training examples');
    return;
  }
  trainButton.disabled = true;
  resumeButton.disabled = true;
  stopButton.disabled = false;
  let run: PlaygroundRun | undefined;
  try {
    setStatus('loading', `starting ${options.backend}…`, { weightsDigest: '' });
    const ckpt = lastCheckpoint(options.model);
    if (!resume) for (const name of await storage.list(checkpointDir(options.model))) await storage.remove(`${checkpointDir(options.model)}/${name}`);
    const started = performance.now();
    let firstStep: number | undefined;
    let header = options.model;
    const chart = new ChartLogger(lossChart, accChart, (m, step) => {
      firstStep ??= step - 1;
      const rate = ((step - firstStep) * options.batchSize) / ((performance.now() - started) / 1000);
      const epoch = (running?.trainer.currentEpoch ?? 0) + 1;
      setStatus('training', `${header}\nepoch ${epoch}/${options.epochs}, step ${step}: loss ${m.train_loss?.toFixed(4)}, acc ${m.train_acc?.toFixed(3)} (${rate.toFixed(0)} examples/s)`, { steps: String(step) });
    });
    // The run's container starts the backend picked on the page (or says why it cannot run here).
    run = await playgroundRun(subset, options, config.models[options.model], { storage, backends: config.backends, accelerator: options.backend, loggers: [chart] });
    running = run;
    const choice = run.trainer.accelerator!;
    header = `${options.model} on ${choice.info.device}`;
    setStatus('training', header, { backend: choice.name, device: choice.info.device });
    await run.trainer.fit(run.module, run.train, run.val, resume ? ckpt : undefined);
    const { predictions, confusion, acc } = await predictValidation(run, subset, options.testExamples);
    renderConfusion($<HTMLTableElement>('confusion'), confusion, subset.classes);
    renderSamples($('samples'), subset, predictions);
    const digest = await weightsDigest(run);
    const { trainer } = run;
    const m = trainer.callbackMetrics;
    const stopped = trainer.shouldStop;
    const seconds = (performance.now() - started) / 1000;
    setStatus(
      'done',
      `${header}\n${stopped ? 'stopped' : 'finished'} at step ${trainer.globalStep} (${seconds.toFixed(1)} s): accuracy ${(acc * 100).toFixed(1)}% on ${predictions.length} held-out images; checkpoint in ${storage.description}`,
      { steps: String(trainer.globalStep), epochs: String(trainer.currentEpoch), testAcc: acc.toFixed(4), valLoss: String(m.val_loss), trainLoss: String(m.train_loss), weightsDigest: digest, stopped: String(stopped), resumedAt: String(chart.resumedAt ?? '') },
    );
  } catch (e) {
    console.error(e);
    setStatus('error', `training failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    // The weights and the optimizer's slots live on the backend until freed here.
    run?.trainer.optimizerConfig?.optimizer.dispose();
    run?.module.model.dispose();
    running = undefined;
    trainButton.disabled = false;
    stopButton.disabled = true;
    await refreshButtons();
  }
}

/** Puts a checkpoint file (from `kiln train` or another browser) where Resume reads it. */
async function upload(): Promise<void> {
  const file = uploadInput.files?.[0];
  if (!file) return;
  const model = readOptions().model;
  await storage.write(lastCheckpoint(model), new Uint8Array(await file.arrayBuffer()));
  uploadInput.value = '';
  status.dataset.uploaded = file.name;
  await refreshButtons();
}

/** Sets the page up with `page`'s models and backends and loads the data. */
export async function startPlayground(page: PageConfig): Promise<void> {
  config = page;
  const select = $<HTMLSelectElement>('model');
  Object.keys(page.models).forEach((name, i) => select.append(new Option(name, name, i === 0, i === 0)));
  const offered = new Set(page.backends.map((b) => b.name));
  for (const option of Array.from($<HTMLSelectElement>('backend').options)) if (!offered.has(option.value)) option.remove();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void train(false);
  });
  resumeButton.addEventListener('click', () => void train(true));
  stopButton.addEventListener('click', () => {
    if (running) running.trainer.shouldStop = true;
  });
  downloadButton.addEventListener('click', () => void downloadFile(storage, lastCheckpoint(readOptions().model), `kiln-${readOptions().model}-last.ckpt`));
  uploadInput.addEventListener('change', () => void upload());
  select.addEventListener('change', () => void refreshButtons());
  trainButton.disabled = true;
  setStatus('loading', 'loading the Fashion-MNIST subset…');
  try {
    subset = await loadSubset(page.assets);
  } catch (e) {
    setStatus('error', e instanceof Error ? e.message : String(e));
    return;
  }
  trainButton.disabled = false;
  await refreshButtons();
  setStatus('idle', `ready: ${subset.train.count} training and ${subset.test.count} test images; tfjs ${tf.version_core}`);
}
