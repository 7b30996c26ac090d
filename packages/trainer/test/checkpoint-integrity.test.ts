import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tf, BackendRegistry, ConfigError, DataFormatError, KilnError, decodeSafetensors, encodeSafetensors } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { CheckpointIntegrityError, ModelCheckpoint, Trainer, crc32c, readCheckpoint, type Callback } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-integrity-'));

/** Trains two epochs with ModelCheckpoint and returns the directory holding last.ckpt. */
async function trainedDir(extra: Callback[] = []): Promise<string> {
  const dir = tmp();
  const module = tinyModule(0);
  const { train, val } = loaders(64, 32, 16);
  const trainer = new Trainer({ maxEpochs: 2, seed: 3, numSanityValSteps: 0 }, [new ModelCheckpoint({ dirpath: dir, saveLast: true, monitor: 'val_loss' }), ...extra]);
  await trainer.fit(module, train, val);
  trainer.optimizerConfig!.optimizer.dispose();
  module.model.dispose();
  return dir;
}

/**
 * Re-encodes a checkpoint with edited metadata and a freshly computed, valid checksum: what a
 * crafted file looks like, so the schema check (not the checksum) has to catch it. The checksum is
 * computed here independently of the library: CRC-32C of the file with its 8 digits read as '0'.
 */
function resealed(bytes: Uint8Array, edit: (metaJson: string) => string): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(bytes, 'x');
  const out = encodeSafetensors({ ...tensors }, { kiln: edit(metadata.kiln), kiln_crc32c: '00000000' });
  const text = new TextDecoder('latin1').decode(out);
  const at = text.indexOf('"kiln_crc32c":"') + '"kiln_crc32c":"'.length;
  out.set(new TextEncoder().encode(crc32c(out).toString(16).padStart(8, '0')), at);
  return out;
}

function loads(bytes: Uint8Array): unknown {
  const file = path.join(tmp(), 'c.ckpt');
  writeFileSync(file, bytes);
  const ck = readCheckpoint(file);
  tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
  return ck.meta;
}

describe('checkpoint integrity', () => {
  let last: Uint8Array;
  beforeAll(async () => {
    await new BackendRegistry([wasmBackend()]).use('wasm');
    last = new Uint8Array(readFileSync(path.join(await trainedDir(), 'last.ckpt')));
  });

  it('loads an intact checkpoint, and the independent checksum agrees with the stored one', () => {
    expect(() => loads(last)).not.toThrow();
    expect(() => loads(resealed(last, (m) => m))).not.toThrow();
  });

  it('detects one flipped byte in tensor data and in the metadata', () => {
    const dataByte = last.slice();
    dataByte[dataByte.length - 5] ^= 0x10;
    expect(() => loads(dataByte)).toThrow(CheckpointIntegrityError);
    const text = new TextDecoder('latin1').decode(last);
    const metaByte = last.slice();
    metaByte[text.indexOf('\\"epoch\\"') + 2] = 'x'.charCodeAt(0);
    expect(() => loads(metaByte)).toThrow(/checksum mismatch/);
  });

  it('refuses crafted metadata with a valid checksum, naming the field', () => {
    const cases: [(m: string) => string, RegExp][] = [
      [(m) => m.replace('"epoch":', '"xpoch":'), /field 'epoch'/],
      [(m) => m.replace(/"globalStep":\d+/, '"globalStep":null'), /field 'globalStep'/],
      [(m) => m.replace(/"globalStep":\d+/, '"globalStep":1.5'), /field 'globalStep'/],
      [(m) => m.replace(/"batch":\d+/, '"batch":-1'), /field 'batch'/],
      [(m) => m.replace('"callbacks":{', '"callbacks":{"__proto__":{"polluted":1},'), /__proto__/],
      [(m) => m.replace(/"rng":\{"s":\[[^\]]*\]/, '"rng":{"s":[1,2]'), /rng\.s' is invalid/],
    ];
    for (const [edit, message] of cases) {
      const bytes = resealed(last, edit);
      expect(() => loads(bytes)).toThrow(message);
      expect(() => loads(bytes)).toThrow(DataFormatError);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('gives only typed errors for randomly damaged checkpoints (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(last.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(), (flips, truncate) => {
        const bytes = truncate ? last.slice(0, flips[0][0]) : last.slice();
        if (!truncate) for (const [at, x] of flips) bytes[at] ^= x;
        try {
          loads(bytes);
          return false; // every damage must be detected
        } catch (e) {
          return e instanceof KilnError;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('ModelCheckpoint paths', () => {
  beforeAll(async () => {
    await new BackendRegistry([wasmBackend()]).use('wasm');
  });

  it('refuses file-name templates that leave its directory', () => {
    for (const filename of ['../escape', '/tmp/abs', 'a/../../b', 'x\0y']) expect(() => new ModelCheckpoint({ dirpath: tmp(), filename })).toThrow(ConfigError);
    expect(() => new ModelCheckpoint({ dirpath: tmp(), bestName: '../best' })).toThrow(ConfigError);
  });

  it('does not trust a restored list of saved files: nothing outside its directory is deleted', async () => {
    const outside = tmp();
    const victim = path.join(outside, 'victim.ckpt');
    writeFileSync(victim, 'precious');
    const dir = tmp();
    const cb = new ModelCheckpoint({ dirpath: dir, saveTopK: 1, monitor: 'val_loss' });
    cb.loadStateDict({ saved: [{ file: victim, score: -1e9 }, { file: path.join(dir, '..', path.basename(outside), 'victim.ckpt'), score: 1e9 }], bestModelPath: victim, bestModelScore: -1e9 });
    expect(cb.keptFiles).toEqual([]);
    expect(cb.bestModelPath).toBe('');
    const module = tinyModule(0);
    const { train, val } = loaders(32, 16, 16);
    const trainer = new Trainer({ maxEpochs: 2, seed: 1, numSanityValSteps: 0 }, [cb]);
    await trainer.fit(module, train, val);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readdirSync(dir).filter((f) => f.endsWith('.ckpt')).length).toBeGreaterThan(0);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });
});

describe('non-finite weights are never checkpointed', () => {
  it('keeps last.ckpt and best.ckpt from the last finite epoch', async () => {
    await new BackendRegistry([wasmBackend()]).use('wasm');
    const dir = tmp();
    /** Poisons a weight at the start of the second epoch. */
    const poison: Callback = {
      onTrainEpochStart(trainer, module) {
        if (trainer.currentEpoch === 1) {
          const p = module.model.parameters()[0].variable;
          p.assign(tf.fill(p.shape, NaN));
        }
      },
    };
    const cb = new ModelCheckpoint({ dirpath: dir, saveLast: true, monitor: 'val_loss', filename: 'epoch={epoch}' });
    const module = tinyModule(0);
    const { train, val } = loaders(32, 16, 16);
    const trainer = new Trainer({ maxEpochs: 2, seed: 1, numSanityValSteps: 0 }, [poison, cb]);
    await trainer.fit(module, train, val);
    expect(cb.skippedNonFinite).toBe(1);
    expect(existsSync(path.join(dir, 'epoch=1.ckpt'))).toBe(false);
    const ck = readCheckpoint(path.join(dir, 'last.ckpt'));
    expect(ck.meta.epoch).toBe(1);
    for (const t of Object.values(ck.modelState)) expect(tf.all(tf.isFinite(t)).dataSync()[0]).toBe(1);
    tf.dispose([...Object.values(ck.modelState), ...Object.values(ck.optimizerSlots)]);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });
});
