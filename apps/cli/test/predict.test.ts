import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { decodeNpy, encodeNpy } from '@kiln/core';
import { importWeightsCommand } from '../src/commands/import-weights.js';
import { predictCommand } from '../src/commands/predict.js';
import type { Command } from '../src/command.js';

/** torchvision fixtures from tools/fixtures/zoo/gen_zoo.py (generated on demand; see packages/zoo/test/fixtures.ts). */
const FIXTURES = path.resolve(__dirname, '../../../tools/fixtures/generated/zoo');
const GENERATOR = path.resolve(__dirname, '../../../tools/fixtures/zoo/gen_zoo.py');

function fixtures(): string | undefined {
  if (existsSync(path.join(FIXTURES, 'resnet18.safetensors'))) return undefined;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) return 'PyTorch + torchvision are not installed (apt-get install python3-torch python3-torchvision)';
  const gen = spawnSync('/usr/bin/python3', [GENERATOR, '--only', 'lenet5,resnet18'], { encoding: 'utf8', timeout: 300_000 });
  if (gen.status !== 0) throw new Error(`${GENERATOR} failed:\n${gen.stderr}`);
  return undefined;
}
const missing = fixtures();

async function run(command: Command, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await command.run(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err, result: JSON.parse(out[out.length - 1] ?? 'null') };
}

describe('kiln import-weights + kiln predict reproduce torchvision logits', () => {
  beforeEach((ctx) => requireOrSkip(ctx, missing));
  it.each(['resnet18', 'lenet5'])('%s', async (name) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-predict-'));
    const ckpt = path.join(dir, `${name}.ckpt`);
    const imported = await run(importWeightsCommand, '--model', name, '--from', 'torchvision', '--weights', path.join(FIXTURES, `${name}.safetensors`), '--out', ckpt, '--backend', 'wasm');
    expect(imported.code).toBe(0);
    expect(imported.result).toMatchObject({ model: name, from: 'torchvision', out: ckpt });
    const out = path.join(dir, 'y.npy');
    const predicted = await run(predictCommand, '--model', name, '--weights', ckpt, '--input', path.join(FIXTURES, `${name}.input.npy`), '--output', out, '--backend', 'wasm');
    expect(predicted.code).toBe(0);
    const got = decodeNpy(new Uint8Array(readFileSync(out)));
    const want = decodeNpy(new Uint8Array(readFileSync(path.join(FIXTURES, `${name}.logits.npy`))));
    expect(got.shape).toEqual(want.shape);
    const worst = Math.max(...Array.from(got.data as Float32Array, (v, i) => Math.abs(v - (want.data as Float32Array)[i])));
    expect(worst).toBeLessThanOrEqual(1e-4);

    // The same images in NHWC give the same logits with --layout nhwc; the wrong layout is named.
    const x = decodeNpy(new Uint8Array(readFileSync(path.join(FIXTURES, `${name}.input.npy`))));
    const [n, c, h, w] = x.shape;
    const nhwc = new Float32Array(x.data.length);
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) nhwc[((i * h + y) * w + z) * c + k] = (x.data as Float32Array)[((i * c + k) * h + y) * w + z];
    writeFileSync(path.join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [n, h, w, c], data: nhwc }));
    const again = await run(predictCommand, '--model', name, '--weights', ckpt, '--input', path.join(dir, 'x.npy'), '--layout', 'nhwc', '--output', path.join(dir, 'y2.npy'), '--backend', 'wasm');
    expect(again.code).toBe(0);
    expect(Array.from(decodeNpy(new Uint8Array(readFileSync(path.join(dir, 'y2.npy')))).data as Float32Array)).toEqual(Array.from(got.data as Float32Array));
    if (c !== h) await expect(run(predictCommand, '--model', name, '--weights', ckpt, '--input', path.join(dir, 'x.npy'), '--output', path.join(dir, 'y3.npy'), '--backend', 'wasm')).rejects.toThrow(/--layout nhwc/);
  }, 120_000);
});

describe('kiln import-weights errors', () => {
  it('names a missing weight file and an unknown format', async () => {
    await expect(run(importWeightsCommand, '--model', 'lenet5', '--from', 'torchvision', '--weights', '/nonexistent/w.safetensors', '--out', '/tmp/x.ckpt', '--backend', 'wasm')).rejects.toThrow(/weight file '\/nonexistent\/w.safetensors' not found/);
    await expect(run(importWeightsCommand, '--model', 'lenet5', '--from', 'onnx', '--weights', 'w', '--out', 'o')).rejects.toThrow(/torchvision, tfjs-layers/);
  });
});
