/**
 * The storages behind checkpoints and logs. IndexedDbStorage runs here on fake-indexeddb (an
 * in-memory implementation of the IndexedDB API, no browser); the real one is exercised by the
 * playground's Chromium test. A whole run — ModelCheckpoint, CsvLogger, JsonlLogger, resume — goes
 * through IndexedDbStorage and must end as the same run on files does.
 */
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, KilnError, NotFoundError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { CsvLogger, FileStorage, IndexedDbStorage, JsonlLogger, ModelCheckpoint, Trainer, readCheckpointFrom, storageBlob, type Storage } from '../src/index.js';
import { loaders, maxAbsDiff, tinyModule, weights } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-storage-'));
const idb = () => new IndexedDbStorage({ database: 'test', indexedDB: new IDBFactory() });
const text = async (s: Storage, name: string) => new TextDecoder().decode(await s.read(name));

describe.each([
  ['FileStorage', () => ({ storage: new FileStorage() as Storage, dir: tmp() })],
  ['IndexedDbStorage', () => ({ storage: idb() as Storage, dir: 'runs/a' })],
])('%s', (_name, make) => {
  it('writes, appends, lists, reads back and removes', async () => {
    const { storage, dir } = make();
    const f = storage.join(dir, 'x.txt');
    expect(await storage.exists(f)).toBe(false);
    await expect(storage.read(f, 'log')).rejects.toBeInstanceOf(NotFoundError);
    await storage.write(f, 'one\n');
    await storage.append(f, 'two\n');
    await storage.append(f, new TextEncoder().encode('three\n'));
    expect(await text(storage, f)).toBe('one\ntwo\nthree\n');
    await storage.write(f, new Uint8Array([1, 2, 3]));
    expect(Array.from(await storage.read(f))).toEqual([1, 2, 3]);
    expect(await (await storageBlob(storage, f)).arrayBuffer()).toEqual(new Uint8Array([1, 2, 3]).buffer);
    await storage.write(storage.join(storage.join(dir, 'sub'), 'deep.bin'), 'deep');
    expect(await storage.list(dir)).toEqual(['x.txt']);
    expect(storage.isDirectlyIn(dir, f)).toBe(true);
    expect(storage.isDirectlyIn(dir, storage.join(storage.join(dir, 'sub'), 'deep.bin'))).toBe(false);
    await storage.remove(f);
    await storage.remove(f);
    expect(await storage.exists(f)).toBe(false);
    expect(await storage.list(dir)).toEqual([]);
  });

  it('keeps names inside their directory', () => {
    const { storage, dir } = make();
    expect(storage.inside(dir, 'a/b.ckpt', 'arg')).toBe(storage.join(storage.join(dir, 'a'), 'b.ckpt'));
    for (const bad of ['../x.ckpt', 'a/../../x.ckpt', '/etc/passwd', 'x\0.ckpt', '']) {
      expect(() => storage.inside(dir, bad, 'ModelCheckpoint.filename')).toThrow(ConfigError);
    }
  });

  it('concurrent appends lose nothing', async () => {
    const { storage, dir } = make();
    const f = storage.join(dir, 'log.txt');
    await Promise.all(Array.from({ length: 20 }, (_, i) => storage.append(f, `${i}\n`)));
    expect((await text(storage, f)).split('\n').filter(Boolean).map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

describe('FileStorage', () => {
  it('refuses a symlink out of the directory, as resolveInside does', () => {
    const dir = tmp();
    symlinkSync(os.tmpdir(), path.join(dir, 'out'));
    expect(() => new FileStorage().inside(dir, 'out/x.ckpt', 'arg')).toThrow(/link out of the directory/);
  });
});

describe('IndexedDbStorage', () => {
  it('without an indexedDB says where it can run', async () => {
    const s = new IndexedDbStorage({ indexedDB: undefined });
    // Node has no global indexedDB: the first use fails with a typed error naming the alternative.
    await expect(s.read('x')).rejects.toThrow(KilnError);
    await expect(s.read('x')).rejects.toThrow(/FileStorage/);
  });

  it('survives a new connection (a page reload): names(), clear()', async () => {
    const factory = new IDBFactory();
    const a = new IndexedDbStorage({ database: 'reload', indexedDB: factory });
    await a.write('ckpt/last.ckpt', 'bytes');
    await a.close();
    const b = new IndexedDbStorage({ database: 'reload', indexedDB: factory });
    expect(await b.names()).toEqual(['ckpt/last.ckpt']);
    expect(await text(b, './ckpt//last.ckpt')).toBe('bytes');
    await b.clear();
    expect(await b.names()).toEqual([]);
  });
});

describe('a run on IndexedDbStorage', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  async function fit(storage: Storage, dir: string, maxEpochs: number, ckptPath?: string) {
    const module = tinyModule(0);
    const { train, val } = loaders(64, 32, 16);
    const csv = new CsvLogger({ dir, storage, curves: false });
    const jsonl = new JsonlLogger({ dir, storage });
    const trainer = new Trainer({ maxEpochs, seed: 3, numSanityValSteps: 0, storage }, [new ModelCheckpoint({ dirpath: storage.join(dir, 'ckpt'), monitor: 'val_loss', saveLast: true })], [csv, jsonl]);
    await trainer.fit(module, train, val, ckptPath);
    const w = weights(module);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
    return { w, trainer, csv: csv.file, jsonl: jsonl.file };
  }

  it('checkpoints, logs and resumes like a run on files, with the same checkpoint bytes', async () => {
    const files = new FileStorage();
    const dir = tmp();
    const onFiles = await fit(files, dir, 3);

    const db = idb();
    await fit(db, 'run', 2);
    expect(await db.list('run/ckpt')).toEqual(expect.arrayContaining(['last.ckpt', 'best.ckpt']));
    const resumed = await fit(db, 'run', 3, 'run/ckpt/last.ckpt');
    expect(maxAbsDiff(resumed.w, onFiles.w)).toBe(0);
    expect(resumed.trainer.callbackMetrics).toEqual(onFiles.trainer.callbackMetrics);
    // The CSV of the interrupted-and-resumed run equals the uninterrupted one's, row for row (but
    // for the throughput column, a wall-clock measurement).
    const withoutThroughput = (csv: string) => {
      const rows = csv.trim().split('\n').map((l) => l.split(','));
      const drop = rows[0].indexOf('train_samples_per_sec');
      expect(drop).toBeGreaterThanOrEqual(0);
      return rows.map((r) => r.filter((_, i) => i !== drop).join(','));
    };
    const resumedRows = withoutThroughput(await text(db, resumed.csv));
    expect(resumedRows).toHaveLength(4);
    expect(resumedRows).toEqual(withoutThroughput(readFileSync(onFiles.csv, 'utf8')));
    expect((await text(db, resumed.jsonl)).split('\n').filter((l) => l.includes('"type":"metrics"'))).toHaveLength(3);
    // What ModelCheckpoint wrote to IndexedDB reads back as a checkpoint of epoch 3.
    const ck = await readCheckpointFrom(db, 'run/ckpt/last.ckpt');
    expect(ck.meta.epoch).toBe(3);
    for (const t of Object.values(ck.modelState)) t.dispose();
    for (const t of Object.values(ck.optimizerSlots)) t.dispose();
  });
});
