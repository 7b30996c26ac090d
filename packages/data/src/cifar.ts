import { readFileSync, existsSync } from 'node:fs';
import { DataFormatError, NotFoundError } from '@kiln/core';
import { ArrayDataset } from './dataset.js';

/*
 * The CIFAR-10 / CIFAR-100 "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html): records
 * of label byte(s) followed by a 32×32 image stored channel-planar (1,024 red bytes, then green, then
 * blue, each row-major). CIFAR-10 has one label byte (0–9); CIFAR-100 two, coarse (0–19) then fine (0–99).
 */

/** The ten CIFAR-10 class names, by label. */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const PIXELS = 32 * 32;

/** Options of `parseCifar` and `readCifarFiles`. */
export interface CifarOptions {
  /** 10 or 100 (default 10). */
  variant?: 10 | 100;
  /** For CIFAR-100: which label to use (default 'fine'). */
  labels?: 'fine' | 'coarse';
}

/** Parses the bytes of one CIFAR binary batch file into [32, 32, 3] images in [0, 1]; `file` names it in errors. */
export function parseCifar(bytes: Uint8Array, file: string, options: CifarOptions = {}): ArrayDataset {
  const variant = options.variant ?? 10;
  const labelBytes = variant === 10 ? 1 : 2;
  const record = labelBytes + 3 * PIXELS;
  if (bytes.length === 0) throw new DataFormatError(file, 'empty CIFAR file', { offset: 0, expected: `records of ${record} bytes` });
  if (bytes.length % record !== 0) {
    const whole = Math.floor(bytes.length / record);
    throw new DataFormatError(file, `file truncated: the last CIFAR-${variant} record is incomplete`, {
      offset: whole * record,
      expected: `a multiple of ${record} bytes (${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + 3072 pixels)`,
      found: `${bytes.length} bytes (${whole} whole records + ${bytes.length - whole * record})`,
      hint: variant === 10 && bytes.length % (2 + 3 * PIXELS) === 0 ? 'this looks like CIFAR-100: pass variant 100' : undefined,
    });
  }
  const n = bytes.length / record;
  const labelIndex = variant === 100 && options.labels !== 'coarse' ? 1 : 0;
  const x = new Float32Array(n * 3 * PIXELS);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * record;
    for (let k = 0; k < labelBytes; k++) {
      const limit = variant === 10 ? 9 : k === 0 ? 19 : 99;
      if (bytes[base + k] > limit) {
        throw new DataFormatError(file, `label of record ${i} is out of range`, { offset: base + k, expected: `0..${limit}`, found: String(bytes[base + k]) });
      }
    }
    y[i] = bytes[base + labelIndex];
    const img = base + labelBytes;
    const out = i * 3 * PIXELS;
    // Planar RGB → interleaved HWC.
    for (let p = 0; p < PIXELS; p++) {
      x[out + 3 * p] = bytes[img + p] / 255;
      x[out + 3 * p + 1] = bytes[img + PIXELS + p] / 255;
      x[out + 3 * p + 2] = bytes[img + 2 * PIXELS + p] / 255;
    }
  }
  return new ArrayDataset(x, y, [32, 32, 3], variant === 10 ? CIFAR10_CLASSES : undefined);
}

/** Reads and concatenates CIFAR binary batch files (e.g. data_batch_1.bin … data_batch_5.bin). */
export function readCifarFiles(files: string[], options: CifarOptions = {}): ArrayDataset {
  const parts = files.map((f) => {
    if (!existsSync(f)) throw new NotFoundError(`CIFAR file '${f}'`, [f]);
    return parseCifar(readFileSync(f), f, options);
  });
  const n = parts.reduce((a, p) => a + p.length, 0);
  const x = new Float32Array(n * 3 * PIXELS);
  const y = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    x.set(p.x, at * 3 * PIXELS);
    y.set(p.y, at);
    at += p.length;
  }
  return new ArrayDataset(x, y, [32, 32, 3], parts[0]?.classes);
}
