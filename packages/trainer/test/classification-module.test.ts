import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng, manualSeed } from '@kiln/core';
import { Linear, ReLU, Sequential, crossEntropy } from '@kiln/layers';
import { GoogLeNet, InceptionV3, forwardWithAuxiliary } from '@kiln/zoo';
import { wasmBackend } from '@kiln/backend-cpu';
import type { Batch } from '@kiln/data';
import { clipGradients } from '@kiln/optim';
import { ClassificationModule, accuracy, topKAccuracy } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

describe('classification metrics', () => {
  const logits = () =>
    tf.tensor2d([
      [2, 1, 0],
      [0, 3, 1],
      [1, 0, 4],
      [5, 4, 0],
    ]);

  it('accuracy counts arg-max hits for integer labels', () => {
    const a = accuracy(logits(), tf.tensor1d([0, 1, 0, 1], 'int32'));
    expect(a.dataSync()[0]).toBeCloseTo(0.5, 6);
  });

  it('accuracy reads soft targets (MixUp/CutMix, one-hot) by their arg-max', () => {
    const soft = tf.tensor2d([
      [0.7, 0.3, 0],
      [0, 0.6, 0.4],
      [0.8, 0.2, 0],
      [0.1, 0.9, 0],
    ]);
    expect(accuracy(logits(), soft).dataSync()[0]).toBeCloseTo(0.5, 6);
  });

  it('top-k accuracy counts labels among the k largest logits', () => {
    const labels = tf.tensor1d([1, 2, 1, 1], 'int32');
    expect(topKAccuracy(logits(), labels, 1).dataSync()[0]).toBeCloseTo(0, 6);
    expect(topKAccuracy(logits(), labels, 2).dataSync()[0]).toBeCloseTo(0.75, 6);
  });
});

describe('metrics off the gradient tape', () => {
  /** Nodes on the tape being recorded now. */
  const tapeLength = () => (tf.engine() as unknown as { state: { activeTape: unknown[] | null } }).state.activeTape?.length ?? 0;
  const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer));

  it('trainingStep records only the loss: the same tape and bit-identical gradients as the loss alone, no leaks', () => {
    manualSeed(3);
    const model = new Sequential(new Linear({ inFeatures: 8, outFeatures: 16 }), new ReLU(), new Linear({ inFeatures: 16, outFeatures: 5 }));
    const module = new ClassificationModule(model, { topK: [2] });
    const batch: Batch = { x: tf.randomNormal([12, 8], 0, 1, 'float32', 5), y: tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], 'int32'), indices: Int32Array.from({ length: 12 }, (_, i) => i) };
    const vars = model.trainableVariables();
    const n0 = tf.memory().numTensors;
    const tapes = { step: 0, loss: 0 };
    let metrics: tf.Scalar[] = [];
    const step = tf.variableGrads(() => {
      const out = module.trainingStep(batch);
      tapes.step = tapeLength();
      metrics = [tf.keep(out.logs.acc), tf.keep(out.logs.top2_acc)];
      if (!out.loss) throw new Error('trainingStep returned no loss');
      return out.loss;
    }, vars);
    const lossOnly = tf.variableGrads(() => {
      const loss = crossEntropy(model.forward(batch.x), batch.y) as tf.Scalar;
      tapes.loss = tapeLength();
      return loss;
    }, vars);
    // Without noGrad, argMax/equal/cast/mean and topk/any/… of the metrics add their nodes here.
    expect(tapes.step).toBe(tapes.loss);
    expect(bits(step.value)).toEqual(bits(lossOnly.value));
    for (const v of vars) expect(bits(step.grads[v.name])).toEqual(bits(lossOnly.grads[v.name]));
    for (const m of metrics) expect(m.dataSync()[0]).toBeGreaterThanOrEqual(0);
    tf.dispose([step.value, lossOnly.value, ...Object.values(step.grads), ...Object.values(lossOnly.grads), ...metrics]);
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose([batch.x, batch.y]);
  });
});

describe('clipGradients', () => {
  it('scales by maxNorm/‖g‖ when the global norm exceeds maxNorm, and leaves small gradients alone', () => {
    // ‖(3, 4)‖ = 5 → scaled to norm 1: (0.6, 0.8).
    const g = { a: tf.tensor1d([3]), b: tf.tensor1d([4]) };
    const c = clipGradients(g, 1, 'norm');
    expect(c.a.dataSync()[0]).toBeCloseTo(0.6, 5);
    expect(c.b.dataSync()[0]).toBeCloseTo(0.8, 5);
    const same = clipGradients(g, 10, 'norm');
    expect(same.a.dataSync()[0]).toBeCloseTo(3, 5);
  });

  it('clips each value into [-v, v] and leaks nothing', () => {
    const g = { a: tf.tensor1d([-3, 0.5, 2]) };
    const before = tf.memory().numTensors;
    const c = clipGradients(g, 1, 'value');
    expect(Array.from(c.a.dataSync())).toEqual([-1, 0.5, 1]);
    tf.dispose(Object.values(c));
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Mean softmax cross-entropy of `rows` logits against integer labels, in float64. */
function handCrossEntropy(flat: Float32Array, classes: number, labels: number[]): number {
  let sum = 0;
  labels.forEach((label, i) => {
    const row = Array.from(flat.subarray(i * classes, (i + 1) * classes));
    const max = Math.max(...row);
    const logSumExp = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    sum += logSumExp - row[label];
  });
  return sum / labels.length;
}

/** |a − b| within float32 rounding of the larger (an untrained net in eval mode has huge logits). */
function expectNear(a: number, b: number): void {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b)));
}

describe('ClassificationModule with auxiliary classifiers', () => {
  const labels = [2, 0];
  const batch = (size: number): Batch => ({ x: tf.randomUniform([2, size, size, 3], 0, 1, 'float32', 4), y: tf.tensor1d(labels, 'int32'), indices: Int32Array.from([0, 1]) });

  it.each([
    ['GoogLeNet: main + 0.3 · (aux1 + aux2)', 'googlenet', undefined, 0.3],
    ['GoogLeNet with auxWeight 0.5', 'googlenet', 0.5, 0.5],
    ['Inception v3: main + 0.4 · aux', 'inception-v3', undefined, 0.4],
  ] as const)('%s (training); validation uses the main logits only', (_name, which, auxWeight, weight) => {
    // No dropout, so the hand computation's forward pass sees the same network.
    const model = which === 'googlenet' ? new GoogLeNet({ numClasses: 3, auxLogits: true, dropout: 0, auxDropout: 0, rng: new Rng(1) }) : new InceptionV3({ numClasses: 3, auxLogits: true, dropout: 0, rng: new Rng(1) });
    const module = new ClassificationModule(model, { auxWeight });
    const b = batch(which === 'googlenet' ? 32 : 299);
    model.train();
    const out = tf.tidy(() => {
      const o = module.trainingStep(b);
      return [o.loss!, o.logs.main_loss].map((t) => tf.keep(t));
    });
    const { logits, aux } = forwardWithAuxiliary(model, b.x);
    expect(aux).toHaveLength(which === 'googlenet' ? 2 : 1);
    const main = handCrossEntropy(logits.dataSync() as Float32Array, 3, labels);
    const auxSum = aux.reduce((s, a) => s + handCrossEntropy(a.dataSync() as Float32Array, 3, labels), 0);
    expectNear(out[0].dataSync()[0], main + weight * auxSum);
    expectNear(out[1].dataSync()[0], main);
    expect(weight * auxSum).toBeGreaterThan(1e-3);
    model.eval();
    const val = module.validationStep(b);
    const evalLogits = model.forward(b.x);
    expectNear(val.loss!.dataSync()[0], handCrossEntropy(evalLogits.dataSync() as Float32Array, 3, labels));
    expect(val.logs.main_loss).toBeUndefined();
    tf.dispose([...out, logits, ...aux, val.loss!, ...Object.values(val.logs), evalLogits, b.x, b.y]);
    model.dispose();
  }, 120_000);

  it('the auxiliary heads receive gradients from the training loss; auxWeight 0 trains the main head alone', () => {
    const model = new GoogLeNet({ numClasses: 3, auxLogits: true, rng: new Rng(2) });
    const b = batch(32);
    model.train();
    const fc = model.getModule('aux1.fc2').param('weight').variable;
    const { value, grads } = tf.variableGrads(() => new ClassificationModule(model).trainingStep(b).loss as tf.Scalar, [fc]);
    expect(tf.norm(grads[fc.name]).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    const plain = tf.tidy(() => {
      const o = new ClassificationModule(model, { auxWeight: 0 }).trainingStep(b);
      expect(o.logs.main_loss).toBeUndefined();
      return tf.keep(o.loss!);
    });
    expect(Number.isFinite(plain.dataSync()[0])).toBe(true);
    expect(() => new ClassificationModule(model, { auxWeight: -1 })).toThrow(/auxWeight/);
    tf.dispose([plain, b.x, b.y]);
    model.dispose();
  }, 60_000);
});
