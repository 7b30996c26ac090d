import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { compose, cutMix, horizontalFlip, mixUp, oneOf, parseAugmentations, randomApply, randomErasing, sampleBeta, verticalFlip } from '@kiln/data';

beforeAll(async () => {
  await wasmBackend().init();
});

describe('MixUp and CutMix', () => {
  it('Beta samples have the right mean and variance', () => {
    const rng = new Rng(0);
    const a = 2;
    const b = 5;
    const n = 20000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = sampleBeta(a, b, rng);
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    expect(mean).toBeCloseTo(a / (a + b), 2);
    expect(s2 / n - mean * mean).toBeCloseTo((a * b) / ((a + b) ** 2 * (a + b + 1)), 2);
    // α < 1 (the usual MixUp setting) goes through the boosted branch.
    let t = 0;
    for (let i = 0; i < n; i++) t += sampleBeta(0.2, 0.2, rng);
    expect(t / n).toBeCloseTo(0.5, 1);
  });

  it('mixUp: x and targets are the same convex blend of each example and its partner', () => {
    // Example n has value n and label n, so the targets reveal λ and the partner.
    const x = tf.tensor4d([0, 0, 1, 1, 2, 2, 3, 3], [4, 1, 2, 1]);
    const y = tf.tensor1d([0, 1, 2, 3], 'int32');
    const before = tf.memory().numTensors;
    const out = mixUp({ alpha: 0.4, numClasses: 4 })({ x, y }, new Rng(9));
    expect(tf.memory().numTensors).toBe(before + 2);
    const xs = out.x.dataSync();
    const ys = out.y.arraySync() as number[][];
    let lam: number | null = null;
    for (let n = 0; n < 4; n++) {
      expect(ys[n].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(xs[2 * n]).toBe(xs[2 * n + 1]);
      // x = λ·n + (1 − λ)·m = Σ_k k·target_k whatever the partner m.
      expect(xs[2 * n]).toBeCloseTo(ys[n].reduce((a, t, k) => a + k * t, 0), 5);
      const others = ys[n].map((t, k) => (k === n ? 0 : t)).filter((t) => t > 0);
      if (others.length === 1) {
        lam ??= ys[n][n];
        expect(ys[n][n]).toBeCloseTo(lam, 5);
      }
    }
    tf.dispose([x, y, out.x, out.y]);
  });

  it('cutMix pastes one box from the partner and mixes targets by its area', () => {
    const n = 4;
    const x = tf.tidy(() => tf.mul(tf.ones([n, 8, 8, 1]), tf.reshape(tf.tensor1d([10, 20, 30, 40]), [n, 1, 1, 1])) as tf.Tensor4D);
    const y = tf.tensor1d([0, 1, 2, 3], 'int32');
    const out = cutMix({ alpha: 1, numClasses: 4 })({ x, y }, new Rng(3));
    const xs = out.x.dataSync();
    const ys = out.y.arraySync() as number[][];
    for (let i = 0; i < n; i++) {
      const own = 10 * (i + 1);
      let foreign = 0;
      let other = -1;
      for (let p = 0; p < 64; p++) {
        const v = xs[i * 64 + p];
        if (v !== own) {
          foreign++;
          other = v / 10 - 1;
        }
      }
      if (foreign > 0) {
        expect(ys[i][other]).toBeCloseTo(foreign / 64, 5);
        expect(ys[i][i]).toBeCloseTo(1 - foreign / 64, 5);
      } else {
        expect(Math.max(...ys[i])).toBeCloseTo(1, 5);
      }
    }
    tf.dispose([x, y, out.x, out.y]);
  });
});

describe('random erasing', () => {
  it('p = 1 erases one rectangle per image; p = 0 changes nothing', () => {
    const x = tf.ones([5, 10, 10, 1]) as tf.Tensor4D;
    const out = randomErasing({ p: 1, value: 0 })(x, new Rng(2));
    const v = out.arraySync() as number[][][][];
    for (let n = 0; n < 5; n++) {
      const rows = new Set<number>();
      const cols = new Set<number>();
      let zeros = 0;
      v[n].forEach((r, i) => r.forEach((p, j) => { if (p[0] === 0) { rows.add(i); cols.add(j); zeros++; } }));
      expect(zeros).toBeGreaterThan(0);
      // A filled rectangle: its zero count is the product of its extents.
      expect(zeros).toBe(rows.size * cols.size);
    }
    const none = randomErasing({ p: 0 })(x, new Rng(2));
    expect(Array.from(none.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, out, none]);
  });
});

describe('compose, randomApply, oneOf, parse', () => {
  it('compose runs steps in order and frees intermediates', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const before = tf.memory().numTensors;
    const out = compose(horizontalFlip(1), verticalFlip(1))(x, new Rng(0));
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(Array.from(out.dataSync())).toEqual([4, 3, 2, 1]);
    const id = compose()(x, new Rng(0));
    expect(id).not.toBe(x);
    tf.dispose([x, out, id]);
  });

  it('randomApply(p = 0 / 1) and oneOf choose per example, deterministically', () => {
    const x = tf.tidy(() => tf.reshape(tf.range(0, 16 * 2, 1, 'float32'), [16, 1, 2, 1]) as tf.Tensor4D);
    const a = x.dataSync();
    const never = randomApply(horizontalFlip(1), 0)(x, new Rng(0));
    expect(Array.from(never.dataSync())).toEqual(Array.from(a));
    const always = randomApply(horizontalFlip(1), 1)(x, new Rng(0));
    expect(always.dataSync()[0]).toBe(a[1]);
    const before = tf.memory().numTensors;
    const mixed = oneOf([horizontalFlip(1), compose()])(x, new Rng(5));
    expect(tf.memory().numTensors).toBe(before + 1);
    const m = mixed.dataSync();
    let flipped = 0;
    for (let n = 0; n < 16; n++) {
      const f = m[2 * n] === a[2 * n + 1];
      expect(f || m[2 * n] === a[2 * n]).toBe(true);
      if (f) flipped++;
    }
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(16);
    const again = oneOf([horizontalFlip(1), compose()])(x, new Rng(5));
    expect(Array.from(again.dataSync())).toEqual(Array.from(m));
    tf.dispose([x, never, always, mixed, again]);
  });

  it('parseAugmentations builds the CLI spec and rejects unknown names with the list of valid ones', () => {
    const x = tf.ones([2, 8, 8, 1]) as tf.Tensor4D;
    const out = parseAugmentations('flip,rotate:15,crop:4')(x, new Rng(0));
    expect(out.shape).toEqual([2, 8, 8, 1]);
    expect(() => parseAugmentations('flip,wobble:3')).toThrow(/rotate:DEG/);
    expect(() => parseAugmentations('rotate:abc')).toThrow(/a number/);
    tf.dispose([x, out]);
  });
});
