import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
// The @kiln/layers layers the zoo builds with, with the options its papers need.
import { AdaptiveAvgPool2d, LocalResponseNorm, MaxPool2d } from '@kiln/layers';

beforeAll(async () => {
  await wasmBackend().init();
});

/** A random [1, h, w, c] input as nested arrays x[i][j][k] plus the tensor. */
function input(h: number, w: number, c: number, seed: number) {
  const rng = new Rng(seed);
  const v = Array.from({ length: h }, () => Array.from({ length: w }, () => Array.from({ length: c }, () => rng.normal())));
  return { v, t: tf.tensor4d([v]) };
}

const close = (got: tf.Tensor, want: number[][][]) => {
  const g = (got.arraySync() as number[][][][])[0];
  expect(got.shape.slice(1)).toEqual([want.length, want[0].length, want[0][0].length]);
  g.forEach((row, i) => row.forEach((cell, j) => cell.forEach((x, k) => expect(x).toBeCloseTo(want[i][j][k], 5))));
};

describe('AdaptiveAvgPool2d (PyTorch bins ⌊i·n/o⌋ … ⌈(i+1)·n/o⌉)', () => {
  it.each([
    [5, 7, 3, 2],
    [1, 1, 6, 6],
    [6, 6, 3, 3],
    [7, 5, 4, 4],
  ])('%i×%i → %i×%i', (h, w, oh, ow) => {
    const { v, t } = input(h, w, 2, h * 10 + w);
    const want = Array.from({ length: oh }, (_, i) =>
      Array.from({ length: ow }, (_, j) =>
        Array.from({ length: 2 }, (_, k) => {
          let s = 0;
          let n = 0;
          for (let a = Math.floor((i * h) / oh); a < Math.ceil(((i + 1) * h) / oh); a++)
            for (let b = Math.floor((j * w) / ow); b < Math.ceil(((j + 1) * w) / ow); b++, n++) s += v[a][b][k];
          return s / n;
        }),
      ),
    );
    const y = new AdaptiveAvgPool2d([oh, ow]).forward(t);
    close(y, want);
    tf.dispose([t, y]);
  });
});

// Output lengths as printed by torch.nn.MaxPool2d(k, s, p, ceil_mode=True) for these sizes.
describe('MaxPool2d with ceilMode (GoogLeNet: ceil_mode=True)', () => {
  it.each([
    [112, 3, 2, 0, 56],
    [7, 3, 2, 0, 3],
    [8, 3, 2, 0, 4],
    [7, 2, 2, 0, 4],
    [6, 3, 2, 1, 4],
    [5, 3, 2, 1, 3],
  ])('n=%i k=%i s=%i p=%i gives %i outputs with the windows PyTorch uses', (n, k, s, p, outLen) => {
    const { v, t } = input(n, n, 1, n);
    const y = new MaxPool2d({ kernelSize: k, stride: s, padding: p, ceilMode: true }).forward(t);
    expect(y.shape).toEqual([1, outLen, outLen, 1]);
    const want = Array.from({ length: outLen }, (_, i) =>
      Array.from({ length: outLen }, (_, j) => {
        let m = -Infinity;
        for (let a = i * s - p; a < i * s - p + k; a++) for (let b = j * s - p; b < j * s - p + k; b++) if (a >= 0 && b >= 0 && a < n && b < n) m = Math.max(m, v[a][b][0]);
        return [m];
      }),
    );
    close(y, want);
    tf.dispose([t, y]);
  });
});

describe("LocalResponseNorm with alphaConvention 'paper' (Krizhevsky et al. 2012, §3.3, AlexNet's lrn)", () => {
  it('matches b_c = a_c / (k + α Σ a²)^β over the n neighbouring channels', () => {
    const { v, t } = input(2, 3, 7, 3);
    const [n, alpha, beta, k] = [5, 1e-1, 0.75, 2];
    const want = v.map((row) =>
      row.map((cell) =>
        cell.map((a, c) => {
          let s = 0;
          for (let d = Math.max(0, c - 2); d <= Math.min(6, c + 2); d++) s += cell[d] ** 2;
          return a / (k + alpha * s) ** beta;
        }),
      ),
    );
    const y = new LocalResponseNorm({ size: n, alpha, beta, k, alphaConvention: 'paper' }).forward(t);
    close(y, want);
    tf.dispose([t, y]);
  });
});
