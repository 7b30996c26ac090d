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
  it('suggests a rate below the divergence point 2/λmax and well above uselessly small rates, and detects the divergence past it', async () => {
    const p = new Problem();
    const all = (): Scalar => tf.add(tf.add(p.loss(0), p.loss(1)), tf.add(p.loss(2), p.loss(3))).div(4) as Scalar;
    const opt = new O.SGD([p.W, p.b], { lr: 0.05 });
    // 133 steps from 1e-5 to 1e3 put the rates on the grid of a 100-step sweep to 10 (ratio 10^(6/99) a
    // step) and carry it on to 1000. Which step the loss blows up at is not fixed by the math: past
    // 2/λmax, gradient descent multiplies the error along the top eigenvector by |1 − lr·λmax| a step,
    // but near the minimum that error is float32 rounding noise, whose size depends on the order of
    // the sums (AVX-512, AVX2 and WASM kernels differ, and so do thread counts). What is fixed: each
    // step's rounding leaves an error of order u·|w| ≈ 1e-8 (u = 2⁻²⁴); growing the loss ~10^55-fold
    // from there would overflow float32 (passing 4× its best takes far less), and over the steps from
    // 2/λmax to 1000 the squared amplification is 10^169 on this fixture (λmax ≈ 1.68). So the sweep
    // must stop as diverged, wherever it does.
    const result = await O.findLr({ loss: all, optimizer: opt, startLr: 1e-5, endLr: 1e3, numSteps: 133 });
    const limit = 2 / hessianTopEigenvalue();
    expect(result.diverged).toBe(true);
    expect(result.losses.length).toBe(result.lrs.length);
    expect(result.smoothedLosses.length).toBe(result.lrs.length);
    // Below 2/λmax each full-batch step lowers this quadratic loss, so its moving average cannot
    // climb to 4× its best there: divergence is only ever reported past the limit.
    const last = result.lrs.length - 1;
    expect(result.lrs[last]).toBeGreaterThan(limit);
    const bestBefore = Math.min(...result.smoothedLosses.slice(0, last));
    const end = result.smoothedLosses[last];
    expect(!Number.isFinite(end) || end > 4 * bestBefore, `smoothed loss ${end} vs best ${bestBefore}`).toBe(true);
    // The suggestion sits in the stable range, where the loss is still falling, and not among the
    // rates too small to move the weights.
    expect(result.suggestion).toBeLessThan(limit);
    expect(result.suggestion).toBeGreaterThan(limit / 100);
    const at = result.lrs.indexOf(result.suggestion);
    expect(result.losses[at + 1]).toBeLessThan(result.losses[at - 1]);
    opt.dispose();
    p.dispose();
  });

  it('reports divergence at the first step whose smoothed loss exceeds divergenceThreshold × the best, and not before', async () => {
    const w = tf.variable(tf.scalar(1), true, 'lr_finder_threshold_w');
    const opt = new O.SGD([w], { lr: 0.1 });
    // The loss ignores w's value (its gradient is 0), so the losses are exactly the ones given (each
    // exact in float32); with smoothing 0 the smoothed loss is the raw one, so 4 (= 4 × the best, 1)
    // is not past the default threshold and 4.25 is.
    const sweep = (seq: number[], divergenceThreshold?: number) =>
      O.findLr({ loss: (i) => tf.add(tf.mul(w, 0), seq[i]) as Scalar, optimizer: opt, numSteps: seq.length, smoothing: 0, divergenceThreshold });
    const r = await sweep([2, 1, 3.75, 4, 4.25, 1, 1, 1]);
    expect(r.diverged).toBe(true);
    expect(r.losses).toEqual([2, 1, 3.75, 4, 4.25]);
    const r2 = await sweep([2, 1, 3.75, 4, 4.25, 1, 1, 1], 5);
    expect(r2.diverged).toBe(false);
    expect(r2.lrs.length).toBe(8);
    const r3 = await sweep([1, 0.5, Number.NaN, 0.1]);
    expect(r3.diverged).toBe(true);
    expect(r3.lrs.length).toBe(3);
    opt.dispose();
    w.dispose();
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
