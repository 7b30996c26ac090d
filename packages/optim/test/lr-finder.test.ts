import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm, Problem, fixture, type Scalar } from './support.js';

beforeAll(useWasm);

/**
 * Largest eigenvalue of the Hessian of the fixture's full-batch least-squares loss,
 * (1/n)·Σ [xᵢ, 1][xᵢ, 1]ᵀ, by power iteration. Gradient descent on it diverges above 2/λmax.
 */
function hessianTopEigenvalue(): number {
  const [n, d] = fixture.shapeX;
  const rows = Array.from({ length: n }, (_, i) => [...fixture.X.slice(i * d, (i + 1) * d), 1]);
  let v = new Array<number>(d + 1).fill(1);
  let lambda = 0;
  for (let it = 0; it < 500; it++) {
    const hv = new Array<number>(d + 1).fill(0);
    for (const r of rows) {
      const dot = r.reduce((s, x, j) => s + x * v[j], 0);
      r.forEach((x, j) => (hv[j] += (x * dot) / n));
    }
    lambda = Math.hypot(...hv);
    v = hv.map((x) => x / lambda);
  }
  return lambda;
}

describe('findLr', () => {
  it('suggests a rate below the divergence point 2/λmax and well above uselessly small rates', async () => {
    const p = new Problem();
    const all = (): Scalar => tf.add(tf.add(p.loss(0), p.loss(1)), tf.add(p.loss(2), p.loss(3))).div(4) as Scalar;
    const opt = new O.SGD([p.W, p.b], { lr: 0.05 });
    const result = await O.findLr({ loss: all, optimizer: opt, startLr: 1e-5, endLr: 10, numSteps: 100 });
    const limit = 2 / hessianTopEigenvalue();
    expect(result.diverged).toBe(true);
    expect(result.lrs.length).toBeLessThan(100);
    expect(result.lrs[result.lrs.length - 1]).toBeGreaterThan(limit);
    expect(result.suggestion).toBeLessThan(limit);
    expect(result.suggestion).toBeGreaterThan(limit / 100);
    expect(result.losses.length).toBe(result.lrs.length);
    expect(result.smoothedLosses.length).toBe(result.lrs.length);
    opt.dispose();
    p.dispose();
  });

  it('restores the weights and the optimizer (slots, step count, rates) and leaks nothing', async () => {
    const p = new Problem();
    const opt = new O.Adam([{ params: [p.W], lr: 0.01 }, { params: [p.b], lr: 0.003 }]);
    p.train(opt, 3);
    const w = Array.from(p.W.dataSync());
    const slot = Array.from(opt.stateDict().slots['0.exp_avg'].dataSync());
    const before = tf.memory().numTensors;
    await O.findLr({ loss: (s) => p.loss(s), optimizer: opt, numSteps: 30, startLr: 1e-4, endLr: 1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(p.W.dataSync())).toEqual(w);
    expect(Array.from(opt.stateDict().slots['0.exp_avg'].dataSync())).toEqual(slot);
    expect(opt.stepCount).toBe(3);
    expect([opt.getLr(0), opt.getLr(1)]).toEqual([0.01, 0.003]);
    opt.dispose();
    p.dispose();
  });

  it('steepestDescent picks the fastest fall per unit of log(lr)', () => {
    const lrs = Array.from({ length: 20 }, (_, i) => 10 ** (-5 + i / 4));
    const smoothed = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.9, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];
    expect(O.steepestDescent(lrs, smoothed)).toBe(lrs[11]);
    expect(O.steepestDescent([1, 2], [1, 1])).toBeNaN();
  });

  it('rejects invalid options, naming them', async () => {
    const p = new Problem();
    const opt = new O.SGD([p.W]);
    const loss = (s: number): Scalar => p.loss(s);
    await expect(O.findLr({ loss, optimizer: opt, startLr: -1 })).rejects.toThrow(/findLr\.startLr/);
    await expect(O.findLr({ loss, optimizer: opt, startLr: 1, endLr: 0.5 })).rejects.toThrow(/findLr\.endLr/);
    await expect(O.findLr({ loss, optimizer: opt, numSteps: 1 })).rejects.toThrow(/findLr\.numSteps/);
    await expect(O.findLr({ loss, optimizer: opt, smoothing: 1 })).rejects.toThrow(/findLr\.smoothing/);
    await expect(O.findLr({ loss: 3 as never, optimizer: opt })).rejects.toThrow(core.ConfigError);
    opt.dispose();
    p.dispose();
  });
});
