import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError, DataFormatError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader } from '@kiln/data';
import { syntheticDataset, tinyModule } from './helpers.js';
import { AUROC, Accuracy, evaluateClassifier, AveragePrecision, ConfusionMatrix, MeanAbsoluteError, MeanSquaredError, PrecisionRecallF1, R2Score, confusionMatrixPng, type Metric } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixturePath = path.resolve(here, '../../../tools/fixtures/metrics/metrics.json');

type Prf = { precision: number; recall: number; f1: number };
interface ClassificationCase {
  name: string;
  numClasses: number;
  scores: number[][];
  targets: number[];
  accuracy: number;
  confusion: number[][];
  topK: Record<string, number> | null;
  prf: Record<'0' | '1', { perClass: { precision: number[]; recall: number[]; f1: number[]; support: number[] }; micro: Prf; macro: Prf; weighted: Prf }>;
  auroc: { perClass: (number | null)[]; macro?: number; weighted?: number };
  averagePrecision: { perClass: (number | null)[]; macro: number; weighted: number; micro: number };
}
interface BinaryCase {
  name: string;
  scores: number[];
  targets: number[];
  auroc: number;
  averagePrecision: number;
}
interface RegressionCase {
  name: string;
  targets: number[] | number[][];
  preds: number[] | number[][];
  mae: number;
  mse: number;
  r2: number;
}
const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as { classification: ClassificationCase[]; binary: BinaryCase[]; regression: RegressionCase[] };

beforeAll(async () => {
  await wasmBackend().init();
});

const TOL = 6;
/** sklearn's value (null where it is undefined) against ours (NaN there). */
function expectClose(actual: number, expected: number | null | undefined): void {
  if (expected === null || expected === undefined) expect(actual).toBeNaN();
  else expect(actual).toBeCloseTo(expected, TOL);
}

/** Feeds rows [from, to) in batches of 16, as a loader would. */
function feed(m: Metric<unknown, unknown>, preds: tf.Tensor, targets: tf.Tensor, from = 0, to = preds.shape[0]!): void {
  for (let i = from; i < to; i += 16) {
    const n = Math.min(16, to - i);
    const p = preds.slice(i, n);
    const t = targets.slice(i, n);
    m.update(p, t);
    tf.dispose([p, t]);
  }
}

/**
 * The metric fed with the whole set, and the merge of two metrics fed the halves (one of them
 * passed through stateDict / loadStateDict as a worker's state would be): both results.
 */
function wholeAndMerged<R>(make: () => Metric<unknown, R>, preds: tf.Tensor, targets: tf.Tensor): { whole: R; merged: R; cleanup: () => void } {
  const whole = make();
  feed(whole, preds, targets);
  const half = Math.floor(preds.shape[0]! / 2) + 3;
  const a = make();
  const b = make();
  feed(a, preds, targets, 0, half);
  feed(b, preds, targets, half);
  const received = make();
  received.loadStateDict(JSON.parse(JSON.stringify(b.stateDict())));
  a.merge(received as never);
  return { whole: whole.compute(), merged: a.compute(), cleanup: () => [whole, a, b, received].forEach((m) => m.dispose()) };
}

describe('classification metrics equal scikit-learn', () => {
  for (const c of fixture.classification) {
    describe(c.name, () => {
      const tensors = () => ({ s: tf.tensor2d(c.scores), t: tf.tensor1d(c.targets, 'int32') });

      it('accuracy, top-k and the confusion matrix; halves merged equal the whole', () => {
        const { s, t } = tensors();
        const acc = wholeAndMerged(() => new Accuracy(), s, t);
        expectClose(acc.whole, c.accuracy);
        expect(acc.merged).toBe(acc.whole);
        acc.cleanup();
        // Labels as predictions and one-hot targets give the same accuracy.
        const labels = new Accuracy();
        const argmax = tf.argMax(s, 1);
        const onehot = tf.oneHot(t, c.numClasses);
        labels.update(argmax, onehot);
        expectClose(labels.compute(), c.accuracy);
        labels.dispose();
        tf.dispose([argmax, onehot]);
        if (c.topK) {
          for (const [k, v] of Object.entries(c.topK)) {
            const top = wholeAndMerged(() => new Accuracy({ topK: Number(k) }), s, t);
            expectClose(top.whole, v);
            expect(top.merged).toBe(top.whole);
            top.cleanup();
          }
        }
        const cm = wholeAndMerged(() => new ConfusionMatrix({ numClasses: c.numClasses }), s, t);
        expect(cm.whole).toEqual(c.confusion);
        expect(cm.merged).toEqual(c.confusion);
        cm.cleanup();
        tf.dispose([s, t]);
      });

      for (const zd of [0, 1] as const) {
        it(`precision / recall / F1, per class and micro / macro / weighted, zero_division=${zd}`, () => {
          const { s, t } = tensors();
          const r = wholeAndMerged(() => new PrecisionRecallF1({ numClasses: c.numClasses, zeroDivision: zd }), s, t);
          const ref = c.prf[zd];
          for (const key of ['precision', 'recall', 'f1'] as const) {
            r.whole.perClass[key].forEach((v, i) => expectClose(v, ref.perClass[key][i]));
            for (const avg of ['micro', 'macro', 'weighted'] as const) expectClose(r.whole[avg][key], ref[avg][key]);
          }
          expect(r.whole.perClass.support).toEqual(ref.perClass.support);
          expect(r.merged).toEqual(r.whole);
          r.cleanup();
          tf.dispose([s, t]);
        });
      }

      it('one-vs-rest AUROC and average precision (exact, from kept scores); halves merged equal the whole', () => {
        const { s, t } = tensors();
        for (const average of ['macro', 'weighted'] as const) {
          const auc = wholeAndMerged(() => new AUROC({ numClasses: c.numClasses, average }), s, t);
          if (c.auroc[average] !== undefined) expectClose(auc.whole, c.auroc[average]);
          expect(auc.merged).toBeCloseTo(auc.whole, 12);
          auc.cleanup();
        }
        for (const average of ['macro', 'weighted', 'micro'] as const) {
          const ap = wholeAndMerged(() => new AveragePrecision({ numClasses: c.numClasses, average }), s, t);
          expectClose(ap.whole, c.averagePrecision[average]);
          expect(ap.merged).toBeCloseTo(ap.whole, 12);
          ap.cleanup();
        }
        const auc = new AUROC({ numClasses: c.numClasses });
        const ap = new AveragePrecision({ numClasses: c.numClasses });
        feed(auc, s, t);
        feed(ap, s, t);
        auc.perClass().forEach((v, i) => expectClose(v, c.auroc.perClass[i]));
        ap.perClass().forEach((v, i) => expectClose(v, c.averagePrecision.perClass[i]));
        tf.dispose([s, t]);
        auc.dispose();
        ap.dispose();
      });
    });
  }

  // Grid scores are multiples of 1/steps, so a histogram with steps + 1 points holds them exactly.
  const gridSteps: Record<string, number> = { ties: 6, 'absent-from-both': 8 };
  for (const c of fixture.classification.filter((x) => x.name in gridSteps)) {
    it(`${c.name}: histogram AUROC / AP (bins on the score grid) equal sklearn, and merge exactly`, () => {
      const s = tf.tensor2d(c.scores);
      const t = tf.tensor1d(c.targets, 'int32');
      const bins = gridSteps[c.name] + 1;
      const auc = wholeAndMerged(() => new AUROC({ numClasses: c.numClasses, bins, average: 'weighted' }), s, t);
      if (c.auroc.weighted !== undefined) expectClose(auc.whole, c.auroc.weighted);
      expect(auc.merged).toBe(auc.whole);
      auc.cleanup();
      const ap = wholeAndMerged(() => new AveragePrecision({ numClasses: c.numClasses, bins, average: 'micro' }), s, t);
      expectClose(ap.whole, c.averagePrecision.micro);
      expect(ap.merged).toBe(ap.whole);
      ap.cleanup();
      tf.dispose([s, t]);
    });
  }
});

describe('binary AUROC and average precision equal scikit-learn', () => {
  for (const c of fixture.binary) {
    it(c.name, () => {
      const s = tf.tensor1d(c.scores);
      const t = tf.tensor1d(c.targets, 'int32');
      const auc = wholeAndMerged(() => new AUROC(), s, t);
      expectClose(auc.whole, c.auroc);
      expect(auc.merged).toBeCloseTo(auc.whole, 12);
      auc.cleanup();
      const ap = wholeAndMerged(() => new AveragePrecision(), s, t);
      expectClose(ap.whole, c.averagePrecision);
      expect(ap.merged).toBeCloseTo(ap.whole, 12);
      ap.cleanup();
      if (c.name === 'ties') {
        // Scores on a 0.1 grid in [0, 1]: an 11-point histogram keeps every distinct score.
        const binned = wholeAndMerged(() => new AUROC({ bins: 11 }), s, t);
        expectClose(binned.whole, c.auroc);
        expect(binned.merged).toBe(binned.whole);
        binned.cleanup();
      }
      tf.dispose([s, t]);
    });
  }
});

describe('regression metrics equal scikit-learn', () => {
  for (const c of fixture.regression) {
    it(c.name, () => {
      const p = tf.tensor(c.preds as number[]);
      const t = tf.tensor(c.targets as number[]);
      for (const [make, expected] of [
        [() => new MeanAbsoluteError(), c.mae],
        [() => new MeanSquaredError(), c.mse],
        [() => new R2Score(), c.r2],
      ] as const) {
        const r = wholeAndMerged(make, p, t);
        expect(r.whole).toBeCloseTo(expected, 5);
        expect(Math.abs(r.whole - expected)).toBeLessThan(1e-6 * Math.max(1, Math.abs(expected)));
        expect(r.merged).toBeCloseTo(r.whole, 6);
        r.cleanup();
      }
      tf.dispose([p, t]);
    });
  }
});

describe('metric state and errors', () => {
  it('keeps no tensors between batches beyond its state, and reset empties it', () => {
    const scores = tf.randomUniform([64, 5]);
    const labels = tf.randomUniform([64], 0, 5, 'int32');
    const values = tf.randomNormal([64]);
    const cases: [Metric<unknown, unknown>, tf.Tensor, tf.Tensor][] = [
      [new Accuracy({ topK: 2 }), scores, labels],
      [new ConfusionMatrix({ numClasses: 5 }), scores, labels],
      [new AUROC({ numClasses: 5, bins: 20 }), scores, labels],
      [new AveragePrecision({ numClasses: 5 }), scores, labels],
      [new R2Score(), values, labels],
      [new MeanSquaredError(), values, labels],
    ];
    for (const [m, p, t] of cases) feed(m, p, t);
    const before = tf.memory().numTensors;
    for (let epoch = 0; epoch < 3; epoch++) {
      for (const [m, p, t] of cases) {
        m.reset();
        feed(m, p, t);
        m.compute();
      }
    }
    // Kept scores are the one state that grows with the data; reset frees them, so the count holds.
    expect(tf.memory().numTensors).toBe(before);
    cases.forEach(([m]) => m.dispose());
    tf.dispose([scores, labels, values]);
  });

  it('update reads nothing back from the device; compute reads once', () => {
    // Batches are cut beforehand: the wasm backend's slice kernel itself reads from the device.
    const batches = Array.from({ length: 4 }, () => ({ scores: tf.randomUniform([16, 4]), labels: tf.randomUniform([16], 0, 4, 'int32'), values: tf.randomNormal([16]) }));
    const backend = tf.backend();
    let reads = 0;
    const readSync = backend.readSync.bind(backend);
    const read = backend.read.bind(backend);
    backend.readSync = (id) => (reads++, readSync(id));
    backend.read = (id) => (reads++, read(id));
    try {
      const classifiers: Metric<unknown, unknown>[] = [new Accuracy({ topK: 2 }), new PrecisionRecallF1({ numClasses: 4 }), new AUROC({ numClasses: 4 }), new AveragePrecision({ numClasses: 4, bins: 50 })];
      const regressors: Metric<unknown, unknown>[] = [new R2Score(), new MeanAbsoluteError()];
      for (const b of batches) {
        for (const m of classifiers) m.update(b.scores, b.labels);
        for (const m of regressors) m.update(b.values, b.labels);
      }
      expect(reads).toBe(0);
      classifiers[0].compute();
      expect(reads).toBe(1);
      [...classifiers, ...regressors].forEach((m) => m.dispose());
    } finally {
      backend.readSync = readSync;
      backend.read = read;
    }
    tf.dispose(batches.flatMap((b) => Object.values(b)));
  });

  it('a label outside 0…K-1 is reported at compute, naming numClasses', () => {
    const cm = new ConfusionMatrix({ numClasses: 3 });
    const p = tf.tensor1d([0, 1, 2], 'int32');
    const t = tf.tensor1d([0, 3, 2], 'int32');
    cm.update(p, t);
    expect(() => cm.compute()).toThrow(DataFormatError);
    expect(() => cm.compute()).toThrow(/numClasses = 3/);
    cm.dispose();
    tf.dispose([p, t]);
  });

  it('rejects merging differently configured metrics, bad options, and kept scores beyond maxExamples', () => {
    const a = new Accuracy({ topK: 1 });
    const b = new Accuracy({ topK: 2 });
    expect(() => a.merge(b)).toThrow(ConfigError);
    expect(() => new Accuracy({ topK: 0 })).toThrow(/Accuracy.topK/);
    expect(() => new ConfusionMatrix({ numClasses: 1 })).toThrow(ConfigError);
    const auc = new AUROC({ maxExamples: 10 });
    const s = tf.zeros([12]);
    expect(() => auc.update(s, s)).toThrow(/set bins/);
    expect(() => new AUROC({ numClasses: 3, average: 'micro' })).toThrow(/'macro' or 'weighted'/);
    // Logits given to a histogram are caught when the result is read.
    const binned = new AUROC({ bins: 10 });
    const logits = tf.tensor1d([-2, 0.5, 3]);
    const labels = tf.tensor1d([0, 1, 1]);
    binned.update(logits, labels);
    expect(() => binned.compute()).toThrow(/2 scores outside \[0, 1\]/);
    tf.dispose([logits, labels]);
    binned.dispose();
    [a, b, auc].forEach((m) => m.dispose());
    s.dispose();
  });
});

/** Decodes our own PNG output: signature, IHDR, and the raw scanlines after inflating IDAT. */
async function decodeRgb(png: Uint8Array): Promise<{ width: number; height: number; pixel: (x: number, y: number) => number[] }> {
  const { inflateSync } = await import('node:zlib');
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const idat: Uint8Array[] = [];
  for (let i = 8; i < png.length; ) {
    const n = dv.getUint32(i);
    const type = new TextDecoder().decode(png.subarray(i + 4, i + 8));
    if (type === 'IDAT') idat.push(png.subarray(i + 8, i + 8 + n));
    i += 12 + n;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const bpp = png[25] === 6 ? 4 : 3;
  const stride = width * bpp;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const r = raw[y * (stride + 1) + 1 + x];
      const a = x >= bpp ? out[y * stride + x - bpp] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? out[(y - 1) * stride + x - bpp] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      out[y * stride + x] = (r + [0, a, b, (a + b) >> 1, paeth][f]) & 255;
    }
  }
  return { width, height, pixel: (x, y) => Array.from(out.subarray(y * stride + x * bpp, y * stride + x * bpp + 3)) };
}

describe('confusionMatrixPng', () => {
  it('draws a heatmap with names on both axes and dark cells where a row is concentrated', async () => {
    const matrix = [
      [50, 2, 0],
      [5, 40, 5],
      [0, 0, 12],
    ];
    const png = confusionMatrixPng(matrix, ['cat', 'dog', 'airplane']);
    const img = await decodeRgb(png);
    expect(img.width).toBeGreaterThan(100);
    expect(img.height).toBeGreaterThan(100);
    // The bottom-right cell (12 of 12) is the darkest shade: sample near its corner.
    const right = img.width - 4 * 2 - 3;
    const bottom = img.height - 4 * 2 - 3;
    expect(img.pixel(right, bottom)).toEqual([8, 48, 107]);
    const colours = new Set<string>();
    for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) colours.add(img.pixel(x, y).join(','));
    // White background, ink for the names and counts, and shades in between for partial rows.
    expect(colours.has('255,255,255')).toBe(true);
    expect(colours.has('20,20,20')).toBe(true);
    expect(colours.size).toBeGreaterThan(5);
    writeFileSync(path.join(os.tmpdir(), 'kiln-confusion-matrix.png'), png);
    expect(() => confusionMatrixPng(matrix, ['a', 'b'])).toThrow(/3 names/);
    expect(() => confusionMatrixPng([[1, 2]], ['a'])).toThrow(/square/);
  });
});

describe('evaluateClassifier', () => {
  it('counts the module predictions against the loader targets, in eval mode, without leaking tensors', async () => {
    const module = tinyModule(3);
    const data = syntheticDataset(40, 5);
    const names = ['north', 'east', 'south'];
    const before = tf.memory().numTensors;
    const result = await evaluateClassifier(module, new DataLoader(data, { batchSize: 16 }), { numClasses: 3, classNames: names });
    expect(tf.memory().numTensors).toBe(before);
    expect(module.model.training).toBe(true);
    // Reference: the eval-mode model on the whole set at once, counted on the host.
    module.model.eval();
    const batch = [...new DataLoader(data, { batchSize: 40 })][0];
    const logits = module.model.forward(batch.x);
    const pred = Array.from(tf.argMax(logits, 1).dataSync());
    const target = Array.from(batch.y.dataSync());
    const expected = [0, 1, 2].map((i) => [0, 1, 2].map((j) => pred.filter((p, n) => target[n] === i && p === j).length));
    expect(result.confusionMatrix).toEqual(expected);
    const tp0 = expected[0][0];
    const predicted0 = expected[0][0] + expected[1][0] + expected[2][0];
    expect(result.summary['precision/north']).toBeCloseTo(predicted0 === 0 ? 0 : tp0 / predicted0, 12);
    expect(result.summary['support/south']).toBe(target.filter((t) => t === 2).length);
    expect(result.summary.accuracy).toBeCloseTo(pred.filter((p, n) => p === target[n]).length / 40, 12);
    tf.dispose([logits, batch.x, batch.y]);
  });
});
