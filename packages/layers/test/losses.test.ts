import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, checkGradient, expectClose, fixtures, raw, tf, useWasm, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

const F = fixtures.losses;

/** Loss value and gradient against PyTorch, to 1e-5. */
function check(c: any, loss: (x: Tensor) => Tensor, label: string): void {
  const x = raw(c.x);
  const y = loss(x);
  expect(Number.isFinite(y.dataSync()[0]), `${label} finite`).toBe(true);
  expect(Math.abs(y.dataSync()[0] - c.y) / (1 + Math.abs(c.y)), `${label}: ${y.dataSync()[0]} vs ${c.y}`).toBeLessThanOrEqual(1e-5);
  const g = tf.grad(loss)(x);
  const want = raw(c.g_x);
  expectClose(g, want, 1e-5, `${label} gradient`);
  tf.dispose([x, y, g, want]);
}

describe('losses match PyTorch (value and gradient, including logits of ±1000)', () => {
  const labels = () => tf.tensor1d(F.labels, 'int32');
  it('cross-entropy', () => check(F.ce, (x) => tf.tidy(() => L.crossEntropy(x, labels())), 'ce'));
  it('cross-entropy with class weights', () => check(F.ce_weighted, (x) => tf.tidy(() => L.crossEntropy(x, labels(), { classWeights: F.classWeights })), 'weighted'));
  it('cross-entropy with label smoothing', () => check(F.ce_smoothing, (x) => tf.tidy(() => L.crossEntropy(x, labels(), { labelSmoothing: 0.1 })), 'smoothing'));
  it('cross-entropy with weights, smoothing and an ignored label', () =>
    check(
      F.ce_weighted_smoothing_ignore,
      (x) => tf.tidy(() => L.crossEntropy(x, tf.tensor1d([0, 2, -100, 1, 2], 'int32'), { classWeights: tf.tensor1d(F.classWeights), labelSmoothing: 0.2, ignoreIndex: -100 })),
      'weighted+smoothing+ignore',
    ));
  it('cross-entropy, sum reduction', () => check(F.ce_sum, (x) => tf.tidy(() => L.crossEntropy(x, labels(), { reduction: 'sum' })), 'sum'));
  it('NLL with class weights', () => check(F.nll, (x) => tf.tidy(() => L.nllLoss(x, labels(), { classWeights: F.classWeights })), 'nll'));
  it('BCE from logits (±200, ±300 stay finite)', () => check(F.bceLogits, (x) => tf.tidy(() => L.binaryCrossEntropyWithLogits(x, tf.tensor1d(F.bceTargets))), 'bceLogits'));
  it('BCE from probabilities', () => check(F.bce, (x) => tf.tidy(() => L.binaryCrossEntropy(x, tf.tensor1d(F.bceTargets))), 'bce'));
  it('MSE', () => check(F.mse, (x) => tf.tidy(() => L.mseLoss(x, raw(F.mseTarget))), 'mse'));
  it('hinge', () => check(F.hinge, (x) => tf.tidy(() => L.hingeLoss(x, tf.tensor1d(F.hingeTargets))), 'hinge'));
});

describe('losses: closed forms, soft targets, finite differences, errors', () => {
  it('total error is ½Σ(t−o)²', () => {
    const o = tf.tensor1d([0.5, 1, -1]);
    const t = tf.tensor1d([1, 1, 1]);
    const e = L.totalError(o, t);
    expect(e.dataSync()[0]).toBeCloseTo(0.5 * (0.25 + 0 + 4), 6);
    // dE/do = o − t
    const g = tf.grad((v: Tensor) => L.totalError(v, t))(o);
    expect(Array.from(g.dataSync())).toEqual([-0.5, 0, -2]);
    tf.dispose([o, t, e, g]);
  });

  it('probability targets equal the label form with one-hot targets', () => {
    const x = raw(F.ce.x);
    const a = L.crossEntropy(x, tf.tensor1d(F.labels, 'int32'), { labelSmoothing: 0.1 });
    const b = L.crossEntropy(x, tf.oneHot(tf.tensor1d(F.labels, 'int32'), 4), { labelSmoothing: 0.1 });
    expectClose(a, b, 1e-6);
    tf.dispose([x, a, b]);
  });

  it('gradients of every loss agree with finite differences', () => {
    const x = tf.tensor2d([
      [0.3, -0.2, 0.5],
      [1.2, 0.1, -0.7],
    ]);
    const labels = tf.tensor1d([2, 0], 'int32');
    checkGradient((v) => L.crossEntropy(v, labels, { classWeights: [1, 2, 0.5], labelSmoothing: 0.1 }), x, { eps: 1e-2 });
    checkGradient((v) => L.nllLoss(tf.logSoftmax(v), labels), x);
    const t = tf.tensor2d([
      [1, 0, 0.5],
      [0, 1, 1],
    ]);
    checkGradient((v) => L.binaryCrossEntropyWithLogits(v, t), x);
    checkGradient((v) => L.binaryCrossEntropy(tf.sigmoid(v), t), x);
    checkGradient((v) => L.mseLoss(v, t), x);
    checkGradient((v) => L.totalError(v, t), x);
    checkGradient((v) => L.hingeLoss(v, tf.tensor2d([[1, -1, 1], [-1, 1, -1]])), x, { eps: 1e-3 });
    tf.dispose([x, labels, t]);
  });

  it('stays finite for huge logits', () => {
    const x = tf.tensor2d([[1e4, -1e4, 0]]);
    const l = L.crossEntropy(x, tf.tensor1d([1], 'int32'));
    expect(l.dataSync()[0]).toBeCloseTo(2e4, 0);
    const bce = L.binaryCrossEntropyWithLogits(tf.tensor1d([1e4, -1e4]), tf.tensor1d([0, 1]));
    expect(bce.dataSync()[0]).toBeCloseTo(1e4, 0);
    const p = L.binaryCrossEntropy(tf.tensor1d([0, 1]), tf.tensor1d([1, 0]));
    expect(Number.isFinite(p.dataSync()[0])).toBe(true);
    tf.dispose([x, l, bce, p]);
  });

  it('rejects wrong shapes naming the loss and argument', () => {
    const x = tf.zeros([3, 4]);
    expect(() => L.crossEntropy(x, tf.zeros([2], 'int32'))).toThrow(/crossEntropy\(targets\)/);
    expect(() => L.crossEntropy(tf.zeros([3]), tf.zeros([3]))).toThrow(core.ShapeMismatchError);
    expect(() => L.crossEntropy(x, tf.zeros([3], 'int32'), { classWeights: [1, 2] })).toThrow(/classWeights/);
    expect(() => L.mseLoss(x, tf.zeros([4, 3]))).toThrow(/mseLoss\(target\)[\s\S]*expected: \[3, 4\][\s\S]*found: \[4, 3\]/);
    expect(() => L.crossEntropy(x, tf.zeros([3], 'int32'), { labelSmoothing: 2 })).toThrow(core.ConfigError);
    x.dispose();
  });

  it('leaves no tensors behind', () => {
    const x = tf.zeros([3, 4]);
    const y = tf.tensor1d([0, 1, 3], 'int32');
    const before = tf.memory().numTensors;
    tf.dispose(L.crossEntropy(x, y, { classWeights: [1, 1, 2, 1], labelSmoothing: 0.1, ignoreIndex: 3 }));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
  });
});
