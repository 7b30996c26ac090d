/**
 * The playground page: pick a model, backend and hyper-parameters, train in the tab, watch the
 * curves, inspect the confusion matrix and sample predictions, export the weights.
 */
import { tf } from '@kiln/core';
import type { Module } from '@kiln/layers';
import { MODELS } from '@kiln/zoo';
import { playgroundBackends } from './backends.js';
import { exportWeights } from './export-weights.js';
import { LineChart, type Series } from './line-chart.js';
import { renderConfusion, renderSamples } from './results-view.js';
import { loadSubset, type Subset } from './subset.js';
import { playgroundInputShape, trainRun, type RunOptions } from './train-loop.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('controls');
const status = $<HTMLElement>('status');
const trainButton = $<HTMLButtonElement>('train');
const stopButton = $<HTMLButtonElement>('stop');
const exportButton = $<HTMLButtonElement>('export');
const lossChart = new LineChart($<HTMLCanvasElement>('loss-chart'));
const accChart = new LineChart($<HTMLCanvasElement>('acc-chart'), [0, 1]);

const base = import.meta.env.BASE_URL;
const registry = playgroundBackends(base);
let subset: Subset | undefined;
let trained: { model: Module; options: RunOptions; backend: string; testAcc: number } | undefined;
let stopRequested = false;

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
    augment: { flip: f.has('flip'), shift: f.has('shift'), noise: f.has('noise') },
    seed: 0,
  };
}

async function train(): Promise<void> {
  if (!subset) return;
  const options = readOptions();
  if (!(options.batchSize >= 1 && options.lr > 0 && options.epochs >= 1 && options.trainExamples >= options.batchSize && options.testExamples >= 1)) {
    setStatus('error', 'batch size, learning rate, epochs and example counts must be positive, with at least one batch of training examples');
    return;
  }
  trained?.model.dispose();
  trained = undefined;
  exportButton.disabled = true;
  trainButton.disabled = true;
  stopButton.disabled = false;
  stopRequested = false;
  const trainLoss: Series = { label: 'train loss', color: '#1f77b4', points: [] };
  const testLoss: Series = { label: 'test loss', color: '#d62728', points: [] };
  const trainAcc: Series = { label: 'train acc', color: '#1f77b4', points: [] };
  const testAcc: Series = { label: 'test acc', color: '#d62728', points: [] };
  lossChart.set([trainLoss, testLoss]);
  accChart.set([trainAcc, testAcc]);
  try {
    setStatus('loading', `starting ${options.backend}…`);
    const choice = await registry.use(options.backend);
    const header = `${options.model} on ${choice.info.device}`;
    setStatus('training', header, { backend: choice.name, device: choice.info.device });
    let lastStep = 0;
    let smoothAcc: number | undefined;
    const started = performance.now();
    const result = await trainRun(subset, options, {
      shouldStop: () => stopRequested,
      onStep: (r) => {
        lastStep = r.step;
        smoothAcc = smoothAcc === undefined ? r.acc : 0.9 * smoothAcc + 0.1 * r.acc;
        trainLoss.points.push([r.step, r.loss]);
        trainAcc.points.push([r.step, smoothAcc]);
        lossChart.set([trainLoss, testLoss]);
        accChart.set([trainAcc, testAcc]);
        const rate = (r.step * options.batchSize) / ((performance.now() - started) / 1000);
        setStatus('training', `${header}\nepoch ${r.epoch + 1}/${options.epochs}, step ${r.step}: loss ${r.loss.toFixed(4)}, acc ${r.acc.toFixed(3)} (${rate.toFixed(0)} examples/s)`, { steps: String(r.step) });
      },
      onEvaluation: (epoch, e) => {
        testLoss.points.push([lastStep, e.loss]);
        testAcc.points.push([lastStep, e.acc]);
        lossChart.set([trainLoss, testLoss]);
        accChart.set([trainAcc, testAcc]);
        renderConfusion($<HTMLTableElement>('confusion'), e.confusion, subset!.classes);
        renderSamples($('samples'), subset!, e.predictions);
        status.dataset.testAcc = e.acc.toFixed(4);
        status.dataset.epochs = String(epoch + 1);
      },
    });
    const acc = Number(status.dataset.testAcc ?? 'NaN');
    trained = { model: result.model, options, backend: choice.name, testAcc: acc };
    const seconds = (performance.now() - started) / 1000;
    setStatus('done', `${header}\n${result.stopped ? 'stopped' : 'finished'} after ${result.steps} steps in ${seconds.toFixed(1)} s: test accuracy ${(acc * 100).toFixed(1)}% on ${Math.min(options.testExamples, subset.test.count)} held-out images`, { steps: String(result.steps), stopped: String(result.stopped) });
    exportButton.disabled = false;
  } catch (e) {
    setStatus('error', `training failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    trainButton.disabled = false;
    stopButton.disabled = true;
  }
}

async function exportTrained(): Promise<void> {
  if (!trained) return;
  const [h, w, c] = playgroundInputShape(trained.options.model);
  const bytes = await exportWeights(trained.model, {
    model: trained.options.model,
    backend: trained.backend,
    input_shape: JSON.stringify([h, w, c]),
    normalization: JSON.stringify({ mean: subset!.mean, std: subset!.std }),
    test_accuracy: String(trained.testAcc),
    dataset: 'fashion-mnist (playground subset)',
  });
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `kiln-${trained.options.model}-${trained.backend}.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function start(): Promise<void> {
  const select = $<HTMLSelectElement>('model');
  for (const name of Object.keys(MODELS)) select.append(new Option(name, name, name === 'lenet5', name === 'lenet5'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void train();
  });
  stopButton.addEventListener('click', () => {
    stopRequested = true;
  });
  exportButton.addEventListener('click', () => void exportTrained());
  trainButton.disabled = true;
  setStatus('loading', 'loading the Fashion-MNIST subset…');
  try {
    subset = await loadSubset(base);
  } catch (e) {
    setStatus('error', e instanceof Error ? e.message : String(e));
    return;
  }
  trainButton.disabled = false;
  setStatus('idle', `ready: ${subset.train.count} training and ${subset.test.count} test images; tfjs ${tf.version_core}`);
}

void start();
