// Helpers the image-folder tests share for writing folders of synthetic images and opening them.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import { imageFolder, type ImageFolder } from '@kiln/data';

/** `open(root, options)`: `imageFolder` whose folders (their decoding threads) are closed after the file's tests. */
export function folderOpener(): (root: string, options?: Parameters<typeof imageFolder>[1]) => Promise<ImageFolder> {
  const opened: ImageFolder[] = [];
  afterAll(() => opened.forEach((f) => f.close()));
  return async (root, options = {}) => {
    const f = await imageFolder(root, options);
    opened.push(f);
    return f;
  };
}

/** Writes `bytes` to `file`, making its directory first. */
export function put(file: string, bytes: Uint8Array | string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
}

/**
 * Deterministic RGB pixels of image `i` (a linear congruential generator from `seed + i`): colour
 * noise, or grey (all three channels equal) when `grey`.
 */
export function noisePixels(i: number, width: number, height: number, grey: boolean, seed: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  let s = seed + i;
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      s = (s * 1103515245 + 12345) >>> 0;
      px[3 * p + c] = grey && c > 0 ? px[3 * p] : (s >>> 16) & 255;
    }
  }
  return px;
}
