import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { brightness, contrast, gamma, gaussianBlur, gaussianKernel1d, hue, normalize, saturation, sharpen, type Augmentation } from '@kiln/data';

/** torchvision outputs for pinned factors, from tools/fixtures/data/gen_color_filter.py. */
const fixture = JSON.parse(readFileSync(new URL('../../../tools/fixtures/data/color-filter.json', import.meta.url), 'utf8')) as {
  shape: [number, number, number, number];
  input: number[];
  outputs: Record<string, number[]>;
};

beforeAll(async () => {
  await wasmBackend().init();
});

function apply(aug: Augmentation, values: number[], shape: [number, number, number, number], seed = 0): Float32Array {
  const x = tf.tensor4d(values, shape);
  const before = tf.memory().numTensors;
  const out = aug(x, new Rng(seed));
  expect(tf.memory().numTensors).toBe(before + 1);
  const v = Float32Array.from(out.dataSync());
  tf.dispose([x, out]);
  return v;
}

describe('colour and filter ops match torchvision', () => {
  const cases: [string, Augmentation][] = [
    ['brightness_1.4', brightness([1.4, 1.4])],
    ['contrast_0.6', contrast([0.6, 0.6])],
    ['saturation_1.7', saturation([1.7, 1.7])],
    ['gamma_0.7', gamma([0.7, 0.7])],
    ['blur_5_1.3', gaussianBlur({ kernelSize: 5, sigma: 1.3 })],
    ['sharpness_2.0', sharpen([2, 2])],
    ['sharpness_0.3', sharpen([0.3, 0.3])],
    ['hue_0.2', hue([0.2, 0.2])],
    ['hue_-0.35', hue([-0.35, -0.35])],
  ];
  for (const [name, aug] of cases) {
    it(name, () => {
      const got = apply(aug, fixture.input, fixture.shape);
      const want = fixture.outputs[name];
      expect(got.length).toBe(want.length);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      expect(worst).toBeLessThan(2e-4);
    });
  }
});

describe('colour ops', () => {
  it('draw one factor per image, reproducibly under a seed', () => {
    const ones = new Array(4 * 2 * 2 * 3).fill(0.5);
    const a = apply(brightness(0.5), ones, [4, 2, 2, 3], 3);
    const b = apply(brightness(0.5), ones, [4, 2, 2, 3], 3);
    expect(a).toEqual(b);
    const perImage = [0, 1, 2, 3].map((n) => a[n * 12]);
    for (let n = 0; n < 4; n++) for (let k = 0; k < 12; k++) expect(a[n * 12 + k]).toBe(perImage[n]);
    expect(new Set(perImage).size).toBe(4);
    for (const v of perImage) expect(v).toBeGreaterThanOrEqual(0.25 - 1e-6);
  });

  it('hue: grey pixels do not change, value and saturation are kept, and shifts are deterministic', () => {
    const rng = new Rng(1);
    const values = Array.from({ length: 2 * 3 * 3 * 3 }, () => rng.uniform(0.3, 0.7));
    const shifted = apply(hue(0.5), values, [2, 3, 3, 3], 4);
    for (let p = 0; p < 18; p++) {
      const before = values.slice(3 * p, 3 * p + 3);
      const after = Array.from(shifted.slice(3 * p, 3 * p + 3));
      // HSV value (max) and the spread (max − min) are what a hue rotation leaves alone.
      expect(Math.max(...after)).toBeCloseTo(Math.max(...before), 5);
      expect(Math.max(...after) - Math.min(...after)).toBeCloseTo(Math.max(...before) - Math.min(...before), 5);
    }
    expect(apply(hue(0.5), values, [2, 3, 3, 3], 4)).toEqual(shifted);
    expect(shifted).not.toEqual(Float32Array.from(values));
    // A full turn is the identity.
    const turned = apply(hue([0.5, 0.5]), Array.from(apply(hue([0.5, 0.5]), values, [2, 3, 3, 3])), [2, 3, 3, 3]);
    for (let i = 0; i < values.length; i++) expect(turned[i]).toBeCloseTo(values[i], 5);
    const grey = apply(hue(0.3), new Array(27).fill(0.4), [1, 3, 3, 3], 2);
    for (const v of grey) expect(v).toBeCloseTo(0.4, 5);
    expect(() => hue(0.6)).toThrow(/hue/);
    expect(() => hue([-0.6, 0])).toThrow(/hue/);
  });

  it('Gaussian kernel is normalised and symmetric; blur keeps flat images flat', () => {
    const k = gaussianKernel1d(7, 1.5);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    for (let i = 0; i < 3; i++) expect(k[i]).toBeCloseTo(k[6 - i], 7);
    const flat = apply(gaussianBlur({ kernelSize: 5, sigma: [0.5, 2] }), new Array(2 * 6 * 6).fill(0.25), [2, 6, 6, 1]);
    for (const v of flat) expect(v).toBeCloseTo(0.25, 6);
    expect(() => gaussianBlur({ kernelSize: 4 })).toThrow(/odd/);
  });

  it('normalize uses the given per-channel statistics', () => {
    const out = apply(normalize({ mean: [0.5, 0.25], std: [0.5, 0.25] }), [1, 0.5, 0, 0], [1, 1, 2, 2]);
    expect(Array.from(out)).toEqual([1, 1, -1, -1]);
    expect(() => apply(normalize({ mean: [0], std: [1] }), [1, 2], [1, 1, 1, 2])).toThrow(/statistics for 1 channels/);
  });
});
