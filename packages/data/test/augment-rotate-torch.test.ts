import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, Rng } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { rotate } from '@kiln/data';

/** torchvision.transforms.functional.rotate outputs, from tools/fixtures/data/gen_rotate.py. */
const fixture = JSON.parse(readFileSync(new URL('../../../tools/fixtures/data/rotate.json', import.meta.url), 'utf8')) as {
  shape: [number, number, number, number];
  input: number[];
  outputs: Record<string, number[]>;
};

beforeAll(async () => {
  await wasmBackend().init();
});

/**
 * Where output pixel (y, x) samples the input for a counter-clockwise rotation by `deg` about the
 * centre: the inverse rotation of its offset from the centre.
 */
function source(y: number, x: number, h: number, w: number, deg: number): [number, number] {
  const t = (deg * Math.PI) / 180;
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const dx = x - cx;
  const dy = y - cy;
  return [cy + Math.sin(t) * dx + Math.cos(t) * dy, cx + Math.cos(t) * dx - Math.sin(t) * dy];
}

describe('rotation by any angle matches torchvision', () => {
  for (const key of Object.keys(fixture.outputs)) {
    it(key, () => {
      const [mode, angleText] = key.split('_');
      const angle = Number(angleText);
      const [n, h, w, c] = fixture.shape;
      const x = tf.tensor4d(fixture.input, fixture.shape);
      const out = rotate([angle, angle], { interpolation: mode as 'nearest' | 'bilinear' })(x, new Rng(0));
      const got = out.dataSync();
      tf.dispose([x, out]);
      const want = fixture.outputs[key];
      let compared = 0;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const [sy, sx] = source(i, j, h, w, angle);
          // Compared: pixels sampled from inside the image (the libraries treat the fill border
          // differently) and, for nearest, not at a rounding tie between two source pixels.
          const inside = sy >= 0 && sy <= h - 1 && sx >= 0 && sx <= w - 1;
          const tie = mode === 'nearest' && (Math.abs((sy % 1) - 0.5) < 1e-3 || Math.abs((sx % 1) - 0.5) < 1e-3);
          if (!inside || tie) continue;
          for (let b = 0; b < n; b++) {
            for (let k = 0; k < c; k++) {
              const at = ((b * h + i) * w + j) * c + k;
              expect(Math.abs(got[at] - want[at])).toBeLessThan(1e-4);
              compared++;
            }
          }
        }
      }
      expect(compared).toBeGreaterThan(want.length / 3);
    });
  }
});
