import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TensorBoardLogger, confusionMatrixPng, crc32c, maskedCrc32c, tfRecord } from '../src/index.js';
import { readProto } from '../src/loggers/protobuf.js';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Splits a TFRecord file, checking both CRCs of every record. */
function records(bytes: Uint8Array): Uint8Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = Number(dv.getBigUint64(i, true));
    expect(dv.getUint32(i + 8, true)).toBe(maskedCrc32c(bytes.subarray(i, i + 8)));
    const data = bytes.subarray(i + 12, i + 12 + n);
    expect(dv.getUint32(i + 12 + n, true)).toBe(maskedCrc32c(data));
    out.push(data);
    i += 16 + n;
  }
  return out;
}

describe('CRC-32C', () => {
  it('matches the published check values', () => {
    // RFC 3720 appendix B.4 and the CRC catalogue's "check" value for CRC-32C.
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('equals the bit-by-bit definition on every length and split (the eight-byte steps and the tail)', () => {
    // The definition: shift each bit through the reflected polynomial 0x82F63B78.
    const reference = (bytes: Uint8Array): number => {
      let c = 0xffffffff;
      for (const b of bytes) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    let s = 12345;
    const data = Uint8Array.from({ length: 1037 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
    for (const n of [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 1037]) {
      const bytes = data.subarray(0, n);
      expect(crc32c(bytes), `length ${n}`).toBe(reference(bytes));
      // Any split point gives the same CRC when the first piece's CRC is passed on.
      for (const cut of [0, 1, 5, Math.floor(n / 2), n]) expect(crc32c(bytes.subarray(cut), crc32c(bytes.subarray(0, cut)))).toBe(reference(bytes));
    }
    // Unaligned views: the eight-byte steps read bytes, not words.
    expect(crc32c(data.subarray(3, 803))).toBe(reference(data.subarray(3, 803)));
  });

  it('masks as TensorFlow does: rotate right 15, add 0xa282ead8', () => {
    const c = 0xe3069283;
    expect(maskedCrc32c(ascii('123456789'))).toBe((((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0);
  });

  it('frames a TFRecord: length, masked CRC of the length, data, masked CRC of the data', () => {
    const r = tfRecord(ascii('abc'));
    expect(r.length).toBe(19);
    expect(Array.from(r.subarray(0, 8))).toEqual([3, 0, 0, 0, 0, 0, 0, 0]);
    expect(records(r).map((d) => new TextDecoder().decode(d))).toEqual(['abc']);
  });
});

describe('TensorBoardLogger', () => {
  it('writes a version event, hparams, scalars and histograms that decode back', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-tb-'));
    const tb = new TensorBoardLogger({ dir, histogramBuckets: 4 });
    tb.logHyperparams({ lr: 0.01, model: 'lenet5' });
    tb.logMetrics({ train_loss: 0.5, val_acc: 0.875 }, 10);
    tb.logHistograms({ 'fc.weight': [0, 1, 2, 3, 4, 5, 6, 7] }, 10);
    await tb.finalize();
    expect(path.basename(tb.file)).toMatch(/^events\.out\.tfevents\.\d+\./);
    const evs = records(new Uint8Array(readFileSync(tb.file))).map(readProto);
    expect(evs).toHaveLength(4);
    expect(new TextDecoder().decode(evs[0].get(3)![0] as Uint8Array)).toBe('brain.Event:2');
    expect(typeof evs[0].get(1)![0]).toBe('number'); // wall_time double

    const text = readProto(readProto(evs[1].get(5)![0] as Uint8Array).get(1)![0] as Uint8Array);
    expect(new TextDecoder().decode(text.get(1)![0] as Uint8Array)).toBe('hparams/text_summary');
    const tensor = readProto(text.get(8)![0] as Uint8Array);
    expect(new TextDecoder().decode(tensor.get(8)![0] as Uint8Array)).toContain('| lr | 0.01 |');

    expect(evs[2].get(2)![0]).toBe(10n);
    const values = readProto(evs[2].get(5)![0] as Uint8Array).get(1)!.map((v) => readProto(v as Uint8Array));
    expect(values.map((v) => new TextDecoder().decode(v.get(1)![0] as Uint8Array))).toEqual(['train_loss', 'val_acc']);
    expect(values.map((v) => v.get(2)![0])).toEqual([0.5, 0.875]);

    const histo = readProto(readProto(readProto(evs[3].get(5)![0] as Uint8Array).get(1)![0] as Uint8Array).get(5)![0] as Uint8Array);
    expect([histo.get(1)![0], histo.get(2)![0], histo.get(3)![0], histo.get(4)![0], histo.get(5)![0]]).toEqual([0, 7, 8, 28, 140]);
    const doubles = (b: Uint8Array) => Array.from(new Float64Array(b.slice().buffer));
    expect(doubles(histo.get(6)![0] as Uint8Array)).toEqual([1.75, 3.5, 5.25, 7]);
    expect(doubles(histo.get(7)![0] as Uint8Array)).toEqual([2, 2, 2, 2]);
  });
});

describe('TensorBoardLogger.logImage', () => {
  it('writes Summary.Value.image with the PNG size, colorspace and the PNG bytes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-tb-img-'));
    const tb = new TensorBoardLogger({ dir });
    const png = confusionMatrixPng([[3, 1], [0, 4]], ['yes', 'no']);
    tb.logImage('test/confusion_matrix', png, 7);
    expect(() => tb.logImage('bad', new Uint8Array(40), 7)).toThrow(/PNG/);
    await tb.finalize();
    const evs = records(new Uint8Array(readFileSync(tb.file))).map(readProto);
    expect(evs).toHaveLength(2);
    expect(evs[1].get(2)![0]).toBe(7n);
    const value = readProto(readProto(evs[1].get(5)![0] as Uint8Array).get(1)![0] as Uint8Array);
    expect(new TextDecoder().decode(value.get(1)![0] as Uint8Array)).toBe('test/confusion_matrix');
    const image = readProto(value.get(4)![0] as Uint8Array);
    const dv = new DataView(png.buffer, png.byteOffset);
    expect(image.get(1)![0]).toBe(BigInt(dv.getUint32(20)));
    expect(image.get(2)![0]).toBe(BigInt(dv.getUint32(16)));
    // The confusion matrix is an RGB PNG (colour type 2): TensorBoard's colorspace 3.
    expect(png[25]).toBe(2);
    expect(image.get(3)![0]).toBe(3n);
    expect(Array.from(image.get(4)![0] as Uint8Array)).toEqual(Array.from(png));
  });
});
