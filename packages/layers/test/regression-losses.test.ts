import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { L, core, checkGradient, expectClose, raw, tf, useWasm, type Tensor } from './support.js';

beforeAll(useWasm, 60_000);

/** PyTorch references from tools/fixtures/layers/gen_regression_losses.py. */
const F = JSON.parse(readFileSync(fileURLToPath(new URL('../../../tools/fixtures/layers/regression-losses.json', import.meta.url)), 'utf8'));

/** Loss value (scalar or elementwise) and the gradient of its sum against PyTorch, to 1e-5. */
function check(c: any, loss: (x: Tensor) => Tensor, label: string): void {
  const x = raw(c.x);
  const y = loss(x);
  if (typeof c.y === 'number') {
    expect(Math.abs(y.dataSync()[0] - c.y) / (1 + Math.abs(c.y)), `${label}: ${y.dataSync()[0]} vs ${c.y}`).toBeLessThanOrEqual(1e-5);
  } else {
    const want = raw(c.y);
    expectClose(y, want, 1e-5, `${label} values`);
    want.dispose();
  }
  const g = tf.grad((v: Tensor) => tf.sum(loss(v)))(x);
  const want = raw(c.g_x);
  expectClose(g, want, 1e-5, `${label} gradient`);
  tf.dispose([x, y, g, want]);
}

describe('regression and multi-label losses match PyTorch (value and gradient)', () => {
  const target = () => raw(F.target);
  const multiHot = () => raw(F.multiHot);
  it('L1', () => check(F.l1, (x) => tf.tidy(() => L.l1Loss(x, target())), 'l1'));
  it('L1, sum', () => check(F.l1_sum, (x) => tf.tidy(() => L.l1Loss(x, target(), { reduction: 'sum' })), 'l1 sum'));
  it('Huber (δ = 1)', () => check(F.huber, (x) => tf.tidy(() => L.huberLoss(x, target())), 'huber'));
  it('Huber (δ = 2)', () => check(F.huber_delta2, (x) => tf.tidy(() => L.huberLoss(x, target(), { delta: 2 })), 'huber δ=2'));
  it('Huber (δ = 0.5), elementwise', () => check(F.huber_delta0_5_none, (x) => tf.tidy(() => L.huberLoss(x, target(), { delta: 0.5, reduction: 'none' })), 'huber none'));
  it('SmoothL1 (β = 1)', () => check(F.smooth_l1, (x) => tf.tidy(() => L.smoothL1Loss(x, target())), 'smooth l1'));
  it('SmoothL1 (β = 0.5)', () => check(F.smooth_l1_beta0_5, (x) => tf.tidy(() => L.smoothL1Loss(x, target(), { beta: 0.5 })), 'smooth l1 β=0.5'));
  it('BCE from logits with posWeight (logits of ±300 stay finite)', () =>
    check(F.bce_pos_weight, (x) => tf.tidy(() => L.binaryCrossEntropyWithLogits(x, multiHot(), { posWeight: F.posWeight })), 'bce posWeight'));
  it('BCE from logits with posWeight as a tensor, sum', () =>
    check(F.bce_pos_weight_sum, (x) => tf.tidy(() => L.binaryCrossEntropyWithLogits(x, multiHot(), { posWeight: tf.tensor1d(F.posWeight), reduction: 'sum' })), 'bce posWeight sum'));
  it('BCE from logits without posWeight', () => check(F.bce_plain, (x) => tf.tidy(() => L.binaryCrossEntropyWithLogits(x, multiHot())), 'bce'));
});

describe('regression losses: closed forms, finite differences, errors', () => {
  it('Huber is ½d² inside δ and δ(|d| − ½δ) outside; SmoothL1 with β = 0 is L1', () => {
    const o = tf.tensor1d([0.5, -3, 2]);
    const t = tf.zeros([3]);
    const h = L.huberLoss(o, t, { delta: 1, reduction: 'none' });
    expect(Array.from(h.dataSync())).toEqual([0.125, 2.5, 1.5]);
    const s0 = L.smoothL1Loss(o, t, { beta: 0 });
    const l1 = L.l1Loss(o, t);
    expect(s0.dataSync()[0]).toBeCloseTo(l1.dataSync()[0], 6);
    expect(l1.dataSync()[0]).toBeCloseTo(5.5 / 3, 6);
    tf.dispose([o, t, h, s0, l1]);
  });

  it('gradients agree with finite differences (away from the kinks)', () => {
    const x = tf.tensor2d([
      [0.31, -0.22, 1.7],
      [2.4, 0.13, -1.9],
    ]);
    const t = tf.tensor2d([
      [0, 0.5, 0.2],
      [0.1, 1, 0.3],
    ]);
    checkGradient((v) => L.l1Loss(v, t), x);
    checkGradient((v) => L.huberLoss(v, t, { delta: 1 }), x);
    checkGradient((v) => L.smoothL1Loss(v, t, { beta: 0.7 }), x);
    checkGradient((v) => L.binaryCrossEntropyWithLogits(v, t, { posWeight: [2, 0.5, 4] }), x);
    tf.dispose([x, t]);
  });

  it('rejects bad options and shapes, naming the loss and argument', () => {
    const x = tf.zeros([2, 3]);
    expect(() => L.huberLoss(x, x, { delta: 0 })).toThrow(core.ConfigError);
    expect(() => L.smoothL1Loss(x, x, { beta: -1 })).toThrow(core.ConfigError);
    expect(() => L.l1Loss(x, tf.zeros([3, 2]))).toThrow(/l1Loss\(target\)/);
    expect(() => L.binaryCrossEntropyWithLogits(x, x, { posWeight: [1, 2] })).toThrow(/posWeight[\s\S]*expected: \[3\]/);
    x.dispose();
  });

  it('leaves no tensors behind', () => {
    const x = tf.tensor2d([[0.5, -2, 3]]);
    const t = tf.tensor2d([[1, 0, 1]]);
    const before = tf.memory().numTensors;
    tf.dispose([L.huberLoss(x, t), L.smoothL1Loss(x, t, { beta: 0.5 }), L.l1Loss(x, t), L.binaryCrossEntropyWithLogits(x, t, { posWeight: [1, 2, 3] })]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, t]);
  });
});
