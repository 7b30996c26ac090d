import { Rng, manualSeed, tf } from '@kiln/core';
import { crossEntropy, type Module } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { modelEntry } from '@kiln/zoo';
import { augment, type AugmentOptions } from './augment.js';
import { batchPixels, type Split, type Subset } from './subset.js';

/** One training run's settings, as picked on the page. */
export interface RunOptions {
  /** Zoo model name (`lenet5`, …). */
  model: string;
  batchSize: number;
  /** Adam's learning rate. */
  lr: number;
  epochs: number;
  /** How many of the subset's training examples to use. */
  trainExamples: number;
  /** How many of the subset's test examples to evaluate on after each epoch. */
  testExamples: number;
  augment: AugmentOptions;
  /** Seeds weights, shuffling and augmentation. */
  seed: number;
}

export interface StepReport {
  step: number;
  epoch: number;
  loss: number;
  acc: number;
}

export interface Evaluation {
  loss: number;
  acc: number;
  /** confusion[true][predicted] counts over the test subset. */
  confusion: number[][];
  /** Predicted class of every evaluated test example (the first `predictions.length`). */
  predictions: Int32Array;
}

/** What the page hears during a run. */
export interface RunHooks {
  onStep(r: StepReport): void;
  onEvaluation(epoch: number, e: Evaluation): void;
  /** Checked before every step; true ends the run after evaluating what was trained so far. */
  shouldStop(): boolean;
}

/**
 * Brings 28×28×1 images to the size and channels the model expects: the LeNets take them as they
 * are (or padded to 32), ImageNet-shaped models get them resized and repeated over 3 channels.
 */
function toModelInput(x: tf.Tensor4D, shape: [number, number, number]): tf.Tensor4D {
  const [h, w, c] = shape;
  return tf.tidy(() => {
    let out = x;
    if (out.shape[1] !== h || out.shape[2] !== w) out = tf.image.resizeBilinear(out, [h, w]);
    if (c !== 1) out = tf.tile(out, [1, 1, 1, c]);
    return out;
  });
}

/** Input size used in the browser: the model's own, capped so deep models stay trainable in a tab. */
export function playgroundInputShape(model: string): [number, number, number] {
  const e = modelEntry(model);
  const size = Math.max(e.minInputSize, Math.min(e.inputShape[0], 32));
  return [size, size, e.inputShape[2]];
}

/** Runs the test subset through the model in eval mode; reads every result asynchronously. */
export async function evaluate(model: Module, subset: Subset, shape: [number, number, number], count = subset.test.count, batchSize = 250): Promise<Evaluation> {
  const split = { ...subset.test, count: Math.min(count, subset.test.count) };
  model.eval();
  const predictions = new Int32Array(split.count);
  const confusion = Array.from({ length: subset.classes.length }, () => new Array<number>(subset.classes.length).fill(0));
  let lossSum = 0;
  for (let start = 0; start < split.count; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, split.count - start) }, (_, i) => start + i);
    const [loss, pred] = tf.tidy(() => {
      const x = toModelInput(tf.tensor4d(batchPixels(split, idx, subset), [idx.length, subset.height, subset.width, 1]), shape);
      const logits = model.forward(x);
      const y = tf.tensor1d(idx.map((i) => split.labels[i]), 'int32');
      return [tf.mul(crossEntropy(logits, y), idx.length), tf.argMax(logits, -1)];
    });
    lossSum += (await loss.data())[0];
    const p = (await pred.data()) as Int32Array;
    tf.dispose([loss, pred]);
    p.forEach((v, i) => {
      predictions[start + i] = v;
      confusion[split.labels[start + i]][v]++;
    });
  }
  model.train();
  let correct = 0;
  for (let k = 0; k < confusion.length; k++) correct += confusion[k][k];
  return { loss: lossSum / split.count, acc: correct / split.count, confusion, predictions };
}

/**
 * Trains a fresh zoo model with Adam, reporting each step and evaluating after each epoch (and
 * when stopped). Reads losses with `await data()`, which keeps the page responsive and works on
 * every backend. Returns the trained model; the caller owns (and disposes) it.
 */
export async function trainRun(subset: Subset, options: RunOptions, hooks: RunHooks): Promise<{ model: Module; steps: number; stopped: boolean }> {
  manualSeed(options.seed);
  const shape = playgroundInputShape(options.model);
  const model = modelEntry(options.model).create({ numClasses: subset.classes.length, inChannels: shape[2] });
  model.train();
  const optimizer = new Adam(model.trainableVariables(), { lr: options.lr });
  const rng = new Rng(options.seed + 1);
  const split: Split = subset.train;
  const n = Math.min(options.trainExamples, split.count);
  let step = 0;
  let stopped = false;
  try {
    for (let epoch = 0; epoch < options.epochs && !stopped; epoch++) {
      const order = rng.permutation(n);
      for (let start = 0; start + options.batchSize <= n; start += options.batchSize) {
        if (hooks.shouldStop()) {
          stopped = true;
          break;
        }
        const idx = order.subarray(start, start + options.batchSize);
        const labels = Array.from(idx, (i) => split.labels[i]);
        const raw = tf.tensor4d(batchPixels(split, idx, subset), [idx.length, subset.height, subset.width, 1]);
        const aug = augment(raw, options.augment, rng);
        const x = toModelInput(aug, shape);
        const y = tf.tensor1d(labels, 'int32');
        let pred: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.forward(x);
          pred = tf.keep(tf.argMax(logits, -1));
          return crossEntropy(logits, y) as tf.Scalar;
        }, model.trainableVariables());
        optimizer.step(grads);
        const loss = (await value.data())[0];
        const p = await pred!.data();
        tf.dispose([raw, aug, x, y, value, pred!, ...Object.values(grads)]);
        const acc = labels.reduce((s, l, i) => s + (p[i] === l ? 1 : 0), 0) / labels.length;
        step++;
        hooks.onStep({ step, epoch, loss, acc });
      }
      hooks.onEvaluation(epoch, await evaluate(model, subset, shape, options.testExamples));
    }
  } finally {
    optimizer.dispose();
  }
  return { model, steps: step, stopped };
}
