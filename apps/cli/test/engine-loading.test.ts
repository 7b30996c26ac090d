import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';

const fixtures = path.join(__dirname, 'fixtures');
const probe = createRequire(import.meta.url)('./fixtures/grad-probe.cjs') as (t: typeof tf) => ProbeResult;

interface ProbeResult {
  backend: string;
  x: number[];
  w: number[];
  gx: number[];
  gw: number[];
  ga: number[];
  gb: number[];
  gm: number[];
  chained: number;
}

/** Closed forms for the probe's gradients, computed with plain loops. */
function reference(r: ProbeResult) {
  const [N, H, W, C] = [2, 5, 5, 2];
  const [KH, KW, CO] = [3, 3, 3];
  const OH = H - KH + 1;
  const OW = W - KW + 1;
  const xAt = (n: number, h: number, w: number, c: number) => r.x[((n * H + h) * W + w) * C + c];
  const wAt = (kh: number, kw: number, c: number, o: number) => r.w[((kh * KW + kw) * C + c) * CO + o];
  // d/dw Σ conv = Σ over output positions of the input patch; d/dx = Σ of kernel taps covering x.
  const gw: number[] = [];
  for (let kh = 0; kh < KH; kh++)
    for (let kw = 0; kw < KW; kw++)
      for (let c = 0; c < C; c++)
        for (let o = 0; o < CO; o++) {
          let s = 0;
          for (let n = 0; n < N; n++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) s += xAt(n, oh + kh, ow + kw, c);
          gw.push(s);
        }
  const gx: number[] = [];
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const oh = h - kh;
              const ow = w - kw;
              if (oh < 0 || ow < 0 || oh >= OH || ow >= OW) continue;
              for (let o = 0; o < CO; o++) s += wAt(kh, kw, c, o);
            }
          gx.push(s);
        }
  // Σ(A·B): dA[i,k] = Σ_j B[k,j], dB[k,j] = Σ_i A[i,k].
  const B = [0.5, -1, 2, 0, 1, 3];
  const A = [1, 2, 3, 4, 5, 6];
  const ga = [0, 1].flatMap(() => [0, 1, 2].map((k) => B[2 * k] + B[2 * k + 1]));
  const gb = [0, 1, 2].flatMap((k) => [0, 1].map(() => A[k] + A[3 + k]));
  const chained = r.x.reduce((s, v) => s + v * v, 0) / r.x.length;
  return { gw, gx, ga, gb, gm: [0.25, 0.25, 0.25, 0.25], chained };
}

function expectClose(actual: number[], expected: number[], tol = 1e-4) {
  expect(actual.length).toBe(expected.length);
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  expect(worst).toBeLessThan(tol);
}

function check(r: ProbeResult) {
  const ref = reference(r);
  expectClose(r.gw, ref.gw);
  expectClose(r.gx, ref.gx);
  expectClose(r.ga, ref.ga);
  expectClose(r.gb, ref.gb);
  expectClose(r.gm, ref.gm);
  expect(Math.abs(r.chained - ref.chained)).toBeLessThan(1e-5);
}

const node = (file: string, ...args: string[]) => JSON.parse(execFileSync(process.execPath, [file, ...args], { encoding: 'utf8', cwd: fixtures })) as ProbeResult;

describe('@kiln/core loads tfjs with gradients registered everywhere', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('in vitest, through the public import', () => {
    const r = probe(tf);
    expect(r.backend).toBe('wasm');
    check(r);
  });

  it('in plain Node ESM (import), on wasm and on the pure-JS cpu backend', () => {
    for (const b of ['wasm', 'cpu']) {
      const r = node(path.join(fixtures, 'grad-probe-esm.mjs'), b);
      expect(r.backend).toBe(b);
      check(r);
    }
  });

  it('in plain Node CJS (require)', () => {
    const r = node(path.join(fixtures, 'grad-probe-cjs.cjs'), 'wasm');
    expect(r.backend).toBe('wasm');
    check(r);
  });

  it('through a bundler (esbuild bundling @kiln/core and @kiln/backend-cpu into one file)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bundle-'));
    const outfile = path.join(dir, 'bundle.mjs');
    await build({
      entryPoints: [path.join(fixtures, 'grad-probe-esm.mjs')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile,
      logLevel: 'error',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
    writeFileSync(path.join(dir, 'grad-probe.cjs'), `module.exports = require(${JSON.stringify(path.join(fixtures, 'grad-probe.cjs'))});`);
    const r = JSON.parse(execFileSync(process.execPath, [outfile, 'cpu'], { encoding: 'utf8', cwd: dir })) as ProbeResult;
    expect(r.backend).toBe('cpu');
    check(r);
  });
});
