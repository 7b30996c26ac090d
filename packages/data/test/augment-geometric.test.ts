import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { affine, affineMatrix, horizontalFlip, randomAffine, rotate, rotate90, shear, translate, verticalFlip, warpAffine, zoom } from '@kiln/data';

beforeAll(async () => {
  await wasmBackend().init();
});

/** A batch whose every value is distinct, so any misplaced pixel shows. */
function ramp(n: number, h: number, w: number, c: number): tf.Tensor4D {
  return tf.tidy(() => tf.reshape(tf.range(0, n * h * w * c, 1, 'float32'), [n, h, w, c]) as tf.Tensor4D);
}

/** Runs `f`, checks it leaves exactly one new tensor (its result), and returns the values. */
function run(f: () => tf.Tensor): { shape: number[]; values: Float32Array } {
  const before = tf.memory().numTensors;
  const out = f();
  expect(tf.memory().numTensors).toBe(before + 1);
  const values = out.dataSync() as Float32Array;
  const shape = out.shape;
  out.dispose();
  return { shape, values: Float32Array.from(values) };
}

function host(x: tf.Tensor): number[][][][] {
  return x.arraySync() as number[][][][];
}

describe('flips', () => {
  it('p = 1 mirrors every image; flipping twice is the identity', () => {
    const x = ramp(2, 3, 4, 2);
    const once = horizontalFlip(1)(x, new Rng(0));
    const twice = horizontalFlip(1)(once, new Rng(0));
    const a = host(x);
    const b = host(once);
    for (let n = 0; n < 2; n++) for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(b[n][i][j]).toEqual(a[n][i][3 - j]);
    expect(Array.from(twice.dataSync())).toEqual(Array.from(x.dataSync()));
    const v = verticalFlip(1)(x, new Rng(0));
    const c = host(v);
    for (let n = 0; n < 2; n++) for (let i = 0; i < 3; i++) expect(c[n][i]).toEqual(a[n][2 - i]);
    tf.dispose([x, once, twice, v]);
  });

  it('p = 0.5 flips a seeded subset, the same one for the same seed', () => {
    const x = ramp(32, 2, 3, 1);
    const r1 = run(() => horizontalFlip(0.5)(x, new Rng(7)));
    const r2 = run(() => horizontalFlip(0.5)(x, new Rng(7)));
    const r3 = run(() => horizontalFlip(0.5)(x, new Rng(8)));
    expect(r1.values).toEqual(r2.values);
    expect(r1.values).not.toEqual(r3.values);
    const orig = x.dataSync();
    let flipped = 0;
    for (let n = 0; n < 32; n++) if (r1.values[n * 6] !== orig[n * 6]) flipped++;
    expect(flipped).toBeGreaterThan(5);
    expect(flipped).toBeLessThan(27);
    x.dispose();
  });
});

describe('rotation', () => {
  it('rotate90(1) is numpy rot90: out[i][j] = in[j][W−1−i], and four turns are the identity', () => {
    const x = ramp(1, 4, 4, 1);
    const a = host(x);
    const r = rotate90(1)(x, new Rng(0));
    const b = host(r);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(b[0][i][j][0]).toBe(a[0][j][3 - i][0]);
    const full = rotate90(4)(x, new Rng(0));
    expect(Array.from(full.dataSync())).toEqual(Array.from(x.dataSync()));
    // Non-square images with a fixed k: shape [N, W, H, C].
    const wide = ramp(1, 2, 3, 1);
    const rw = rotate90(1)(wide, new Rng(0));
    expect(rw.shape).toEqual([1, 3, 2, 1]);
    tf.dispose([x, r, full, wide, rw]);
  });

  it('random quarter turns pick one of the four rotations per image', () => {
    const x = ramp(8, 3, 3, 1);
    const out = host(rotate90()(x, new Rng(3)));
    const turns = [0, 1, 2, 3].map((k) => host(rotate90(k)(x, new Rng(0))));
    const seen = new Set<number>();
    for (let n = 0; n < 8; n++) {
      const k = turns.findIndex((t) => JSON.stringify(t[n]) === JSON.stringify(out[n]));
      expect(k).toBeGreaterThanOrEqual(0);
      seen.add(k);
    }
    expect(seen.size).toBeGreaterThan(1);
    expect(() => rotate90()(ramp(1, 2, 3, 1), new Rng(0))).toThrow(/square/);
    x.dispose();
  });

  it('rotate by exactly 90° (affine path) equals rotate90(1)', () => {
    const x = ramp(2, 5, 5, 2);
    const viaAffine = run(() => rotate([90, 90], { interpolation: 'nearest' })(x, new Rng(0)));
    const exact = run(() => rotate90(1)(x, new Rng(0)));
    expect(viaAffine.values).toEqual(exact.values);
    // Bilinear at an exact grid mapping gives the same pixels up to rounding.
    const bil = run(() => rotate([90, 90])(x, new Rng(0)));
    bil.values.forEach((v, i) => expect(v).toBeCloseTo(exact.values[i], 3));
    x.dispose();
  });

  it('an arbitrary angle maps the centre to itself and is deterministic under a seed', () => {
    const x = ramp(4, 7, 7, 1);
    const a = run(() => rotate(30)(x, new Rng(11)));
    const b = run(() => rotate(30)(x, new Rng(11)));
    expect(a.values).toEqual(b.values);
    const orig = x.dataSync();
    for (let n = 0; n < 4; n++) expect(a.values[n * 49 + 24]).toBeCloseTo(orig[n * 49 + 24], 4);
    x.dispose();
  });
});

describe('affine family', () => {
  it('translation by whole pixels shifts the array and fills with the fill value', () => {
    const x = ramp(1, 4, 5, 1);
    const a = host(x);
    // Forward shift of +2 columns, −1 row.
    const out = host(affine([1, 0, 2, 0, 1, -1], { interpolation: 'nearest', fillValue: -1 })(x, new Rng(0)));
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 5; j++) {
        const si = i + 1;
        const sj = j - 2;
        const want = si >= 0 && si < 4 && sj >= 0 && sj < 5 ? a[0][si][sj][0] : -1;
        expect(out[0][i][j][0]).toBe(want);
      }
    }
    x.dispose();
  });

  it('random translate moves each image by at most the bound, as a rigid shift', () => {
    const x = ramp(6, 8, 8, 1);
    const t = translate(0.25, 0.25, { interpolation: 'nearest', fillValue: -1 })(x, new Rng(5));
    const out = host(t);
    const a = host(x);
    for (let n = 0; n < 6; n++) {
      // The pixel value tells where it came from; every kept pixel moved by the same (dy, dx).
      const shifts = new Set<string>();
      for (let i = 0; i < 8; i++) {
        for (let j = 0; j < 8; j++) {
          const v = out[n][i][j][0];
          if (v < 0) continue;
          const src = v - n * 64;
          const si = Math.floor(src / 8);
          const sj = src % 8;
          expect(a[n][si][sj][0]).toBe(v);
          shifts.add(`${i - si},${j - sj}`);
        }
      }
      expect(shifts.size).toBeLessThanOrEqual(1);
      for (const s of shifts) for (const d of s.split(',').map(Number)) expect(Math.abs(d)).toBeLessThanOrEqual(2);
    }
    tf.dispose([x, t]);
  });

  it('zoom by 2 about the centre samples the centre at half spacing', () => {
    // A linear ramp in x: value = column. Zoom ×2 → value = c + (j − c)/2 away from borders.
    const x = tf.tidy(() => tf.tile(tf.reshape(tf.range(0, 9, 1, 'float32'), [1, 1, 9, 1]), [1, 9, 1, 1]) as tf.Tensor4D);
    const out = host(zoom([2, 2])(x, new Rng(0)));
    for (let j = 0; j < 9; j++) expect(out[0][4][j][0]).toBeCloseTo(4 + (j - 4) / 2, 4);
    x.dispose();
  });

  it('shear moves rows in proportion to their distance from the centre row', () => {
    const m = affineMatrix(0, 1, 45, 0, 0);
    expect(m[0]).toBeCloseTo(1);
    expect(m[1]).toBeCloseTo(1);
    expect(m[3]).toBeCloseTo(0);
    expect(m[4]).toBeCloseTo(1);
    const x = ramp(2, 5, 5, 1);
    const a = run(() => shear(20)(x, new Rng(1)));
    const b = run(() => shear(20)(x, new Rng(1)));
    expect(a.values).toEqual(b.values);
    x.dispose();
  });

  it('warpAffine rejects singular matrices and randomAffine rejects bad ranges, with typed errors', () => {
    const x = ramp(1, 3, 3, 1);
    expect(() => warpAffine(x, [[0, 0, 0, 0, 0, 0]])).toThrow(/invertible/);
    expect(() => randomAffine({ scale: [0, 1] })).toThrow(/scale/);
    x.dispose();
  });
});
