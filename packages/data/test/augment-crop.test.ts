import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { centerCrop, patches, randomCrop, randomResizedCrop } from '@kiln/data';

beforeAll(async () => {
  await wasmBackend().init();
});

function ramp(n: number, h: number, w: number, c = 1): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.reshape(tf.range(0, n * h * w * c, 1, 'float32'), [n, h, w, c]), 1) as tf.Tensor4D);
}

/** Finds the window of `src` (h × w) equal to `win`, or null: crops must be exact copies. */
function locate(src: number[][], win: number[][]): [number, number] | null {
  for (let t = 0; t + win.length <= src.length; t++) {
    for (let l = 0; l + win[0].length <= src[0].length; l++) {
      if (win.every((row, i) => row.every((v, j) => v === src[t + i][l + j]))) return [t, l];
    }
  }
  return null;
}

const plane = (x: number[][][][], n: number) => x[n].map((r) => r.map((p) => p[0]));

describe('crops', () => {
  it('randomCrop with padding copies a window of the zero-padded image exactly', () => {
    const x = ramp(6, 5, 5);
    const before = tf.memory().numTensors;
    const out = randomCrop({ padding: 2 })(x, new Rng(1));
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(out.shape).toEqual([6, 5, 5, 1]);
    const padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]]);
    const p = padded.arraySync() as number[][][][];
    const o = out.arraySync() as number[][][][];
    const offsets = new Set<string>();
    for (let n = 0; n < 6; n++) {
      const at = locate(plane(p, n), plane(o, n));
      expect(at).not.toBeNull();
      offsets.add(String(at));
    }
    expect(offsets.size).toBeGreaterThan(1);
    const again = randomCrop({ padding: 2 })(x, new Rng(1));
    expect(Array.from(again.dataSync())).toEqual(Array.from(out.dataSync()));
    tf.dispose([x, out, padded, again]);
  });

  it('centerCrop takes the middle window', () => {
    const x = ramp(1, 5, 6);
    const out = centerCrop([3, 2])(x, new Rng(0));
    const a = plane(x.arraySync() as number[][][][], 0);
    expect(plane(out.arraySync() as number[][][][], 0)).toEqual([1, 2, 3].map((i) => [a[i][2], a[i][3]]));
    expect(() => centerCrop([7, 2])(x, new Rng(0))).toThrow(/at least 7/);
    tf.dispose([x, out]);
  });

  it('randomResizedCrop gives the requested size, and the full-image window is the identity', () => {
    const x = ramp(3, 8, 8);
    const out = randomResizedCrop({ size: [4, 4] })(x, new Rng(2));
    expect(out.shape).toEqual([3, 4, 4, 1]);
    const full = randomResizedCrop({ size: [8, 8], scale: [1, 1], ratio: [1, 1] })(x, new Rng(2));
    const a = x.dataSync();
    full.dataSync().forEach((v, i) => expect(v).toBeCloseTo(a[i], 4));
    tf.dispose([x, out, full]);
  });

  it('grid patches tile the image in order; random patches are exact windows', () => {
    const x = ramp(2, 4, 6);
    const grid = patches({ size: [2, 3] })(x, new Rng(0));
    expect(grid.shape).toEqual([8, 2, 3, 1]);
    const a = x.arraySync() as number[][][][];
    const g = grid.arraySync() as number[][][][];
    // Image 1, patch 3 (second row of patches, second column): rows 2–3, columns 3–5.
    expect(plane(g, 7)).toEqual([2, 3].map((i) => [3, 4, 5].map((j) => a[1][i][j][0])));
    const rand = patches({ size: [2, 2], count: 3 })(x, new Rng(4));
    expect(rand.shape).toEqual([6, 2, 2, 1]);
    const r = rand.arraySync() as number[][][][];
    for (let k = 0; k < 6; k++) expect(locate(plane(a, Math.floor(k / 3)), plane(r, k))).not.toBeNull();
    tf.dispose([x, grid, rand]);
  });
});
