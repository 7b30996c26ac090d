import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodePng } from '@kiln/data';
import { runCli } from '../src/index.js';

/** Runs `kiln ARGS` in-process; `result` is the last stdout line parsed as JSON (null when there is none or it is not JSON). */
export async function kiln(...argv: string[]): Promise<{ code: number; out: string[]; err: string[]; result: any }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, (l) => out.push(l.replace(/\n$/, '')), (l) => err.push(l.replace(/\n$/, '')));
  let result = null;
  try {
    result = JSON.parse(out[out.length - 1] ?? 'null');
  } catch {
    result = null;
  }
  return { code, out, err, result };
}

/**
 * Writes a CIFAR-10 copy in the binary version's layout under `root/cifar-10-batches-bin/`:
 * `perBatch` records in each of the five training batches and the test batch. Record i of class c
 * is a flat image whose red, green and blue are fixed per class, plus a little per-record noise,
 * so the classes are learnable from colour alone.
 */
export function writeCifar10(root: string, perBatch: number, names = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']): string {
  const dir = path.join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const batch = (seed: number) => {
    const out = new Uint8Array(perBatch * 3073);
    for (let i = 0; i < perBatch; i++) {
      const label = (i + seed) % 10;
      out[i * 3073] = label;
      for (let ch = 0; ch < 3; ch++) {
        const base = (label * (37 + 50 * ch)) % 200;
        for (let p = 0; p < 1024; p++) out[i * 3073 + 1 + ch * 1024 + p] = base + ((p * 7 + i * 13 + ch) % 40);
      }
    }
    return out;
  };
  for (let b = 1; b <= 5; b++) writeFileSync(path.join(dir, `data_batch_${b}.bin`), batch(b));
  writeFileSync(path.join(dir, 'test_batch.bin'), batch(0));
  writeFileSync(path.join(dir, 'batches.meta.txt'), names.join('\n') + '\n');
  return dir;
}

/**
 * A tiny class-per-folder tree with train/ and test/: class k's images are grey squares of
 * brightness k/(classes − 1) with a darker border, of a few different sizes, as PNG; `channels` 3
 * tints them so they are RGB files.
 */
export function writeImageFolder(root: string, classes: string[], perClass: { train: number; test: number }, channels: 1 | 3 = 1): void {
  for (const split of ['train', 'test'] as const) {
    classes.forEach((name, k) => {
      const dir = path.join(root, split, name);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < perClass[split]; i++) {
        const side = [20, 28, 36][i % 3];
        const px = new Uint8Array(side * side * channels);
        const v = Math.round((255 * k) / Math.max(1, classes.length - 1));
        for (let y = 0; y < side; y++) {
          for (let x = 0; x < side; x++) {
            const edge = x < 2 || y < 2 || x >= side - 2 || y >= side - 2;
            for (let c = 0; c < channels; c++) px[(y * side + x) * channels + c] = edge ? 0 : Math.min(255, v + c * 10 + ((x + y + i) % 5));
          }
        }
        writeFileSync(path.join(dir, `${name}-${i}.png`), encodePng(px, side, side, channels));
      }
    });
  }
}
