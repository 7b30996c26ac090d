import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFormatError } from '@kiln/core';
import { DatasetUnavailableError, cifar, locateCifar, readCifarClassNames, readTar, unpackCifarArchive } from '@kiln/data';

/**
 * Writes records in CIFAR's binary layout: label byte(s), then 1,024 red, 1,024 green and 1,024
 * blue bytes. Image `i`'s pixels are all (i, 2i, 3i) so a test can tell which record it reads.
 */
function records(labels: number[][]): Uint8Array {
  const n = labels.length;
  const size = labels[0].length + 3072;
  const out = new Uint8Array(n * size);
  labels.forEach((l, i) => {
    out.set(l, i * size);
    for (let c = 0; c < 3; c++) out.fill((i * (c + 1)) % 256, i * size + l.length + c * 1024, i * size + l.length + (c + 1) * 1024);
  });
  return out;
}

/** A complete CIFAR-10 copy as the archive unpacks it: five training batches, a test batch, the names. */
function writeCifar10(root: string, names = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']): string {
  const dir = path.join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  for (let b = 1; b <= 5; b++) writeFileSync(path.join(dir, `data_batch_${b}.bin`), records([[b], [b + 1]]));
  writeFileSync(path.join(dir, 'test_batch.bin'), records([[9], [0], [4]]));
  writeFileSync(path.join(dir, 'batches.meta.txt'), names.join('\n') + '\n\n');
  return dir;
}

function writeCifar100(root: string): string {
  const dir = path.join(root, 'cifar-100-binary');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'train.bin'), records([[3, 57], [19, 99], [0, 0]]));
  writeFileSync(path.join(dir, 'test.bin'), records([[7, 42]]));
  writeFileSync(path.join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n'));
  writeFileSync(path.join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n'));
  return dir;
}

const offline: typeof fetch = () => Promise.reject(new Error('getaddrinfo ENOTFOUND www.cs.toronto.edu'));

describe('CIFAR-10/100 binary copies', () => {
  it('finds CIFAR-10 in DIR or DIR/cifar-10-batches-bin and reads the splits with the names of batches.meta.txt', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar10-'));
    const dir = writeCifar10(root);
    expect(await locateCifar({ dataDir: root })).toBe(dir);
    expect(await locateCifar({ dataDir: dir })).toBe(dir);
    const train = await cifar('train', { dataDir: root });
    expect(train.length).toBe(10);
    expect(Array.from(train.y)).toEqual([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    expect(train.classes).toEqual(['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    const test = await cifar('test', { dataDir: root });
    expect(Array.from(test.y)).toEqual([9, 0, 4]);
    // Record 2 of the test batch is (2, 4, 6) everywhere: planar bytes come back as HWC pixels.
    expect(Array.from(test.get(2).x.subarray(0, 6), (v) => Math.round(v * 255))).toEqual([2, 4, 6, 2, 4, 6]);
    expect(test.shape).toEqual([32, 32, 3]);
  });

  it('reads CIFAR-100 with fine or coarse labels and their names', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar100-'));
    writeCifar100(root);
    const fine = await cifar('train', { dataDir: root, variant: 100 });
    expect(Array.from(fine.y)).toEqual([57, 99, 0]);
    expect(fine.classes?.length).toBe(100);
    expect(fine.classes?.[57]).toBe('fine57');
    const coarse = await cifar('test', { dataDir: root, variant: 100, labels: 'coarse' });
    expect(Array.from(coarse.y)).toEqual([7]);
    expect(coarse.classes?.[7]).toBe('coarse7');
  });

  it('falls back to the published CIFAR-10 names and rejects a names file of the wrong length', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar-names-'));
    expect(readCifarClassNames(root)[0]).toBe('airplane');
    writeFileSync(path.join(root, 'batches.meta.txt'), 'a\nb\n');
    expect(() => readCifarClassNames(root)).toThrow(DataFormatError);
    expect(() => readCifarClassNames(root)).toThrow(/expected 10 class names/);
  });

  it('offline, says where to put the files; with a data directory it never downloads', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar-empty-'));
    let calls = 0;
    const counting: typeof fetch = (...a) => {
      calls++;
      return offline(...a);
    };
    const e = await locateCifar({ dataDir: empty, fetchImpl: counting }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DatasetUnavailableError);
    expect(calls).toBe(0);
    const text = String((e as Error).message);
    expect(text).toMatch(/CIFAR-10 could not be found/);
    expect(text).toContain('cifar-10-binary.tar.gz');
    expect(text).toContain('--dataset cifar10:DIR');
    expect(text).toContain(path.join(empty, 'cifar-10-batches-bin'));

    const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar-cache-'));
    const d = await locateCifar({ variant: 100, env: {}, cacheDir, fetchImpl: counting }).catch((x: unknown) => x);
    expect(d).toBeInstanceOf(DatasetUnavailableError);
    expect(calls).toBe(1);
    expect(String((d as Error).message)).toMatch(/ENOTFOUND/);
    expect(String((d as Error).message)).toContain('cifar-100-binary.tar.gz');
  });

  it('unpacks the archive layout that `tar czf` writes (the download path)', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar-tar-'));
    writeCifar10(path.join(root, 'src'));
    const archive = path.join(root, 'cifar-10-binary.tar.gz');
    const made = spawnSync('tar', ['czf', archive, '-C', path.join(root, 'src'), 'cifar-10-batches-bin'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const dest = path.join(root, 'cache');
    unpackCifarArchive(archive, dest);
    return locateCifar({ dataDir: dest }).then(async (dir) => {
      expect(dir).toBe(path.join(dest, 'cifar-10-batches-bin'));
      expect((await cifar('train', { dataDir: dest })).length).toBe(10);
    });
  });

  it('reads GNU long names and refuses archive members that leave the destination', () => {
    const header = (name: string, size: number, type: string) => {
      const h = new Uint8Array(512);
      h.set(new TextEncoder().encode(name.slice(0, 100)), 0);
      h.set(new TextEncoder().encode(size.toString(8).padStart(11, '0')), 124);
      h[156] = type.charCodeAt(0);
      return h;
    };
    const long = 'd/'.repeat(60) + 'x.bin';
    const pad = (b: Uint8Array) => {
      const out = new Uint8Array(Math.ceil(b.length / 512) * 512);
      out.set(b);
      return out;
    };
    const nameBytes = new TextEncoder().encode(long);
    const tar = new Uint8Array([...header('././@LongLink', nameBytes.length, 'L'), ...pad(nameBytes), ...header('ignored', 3, '0'), ...pad(Uint8Array.from([1, 2, 3])), ...new Uint8Array(1024)]);
    const entries = readTar(tar, 'long.tar');
    expect(entries.map((e) => e.name)).toEqual([long]);
    expect(Array.from(entries[0].data)).toEqual([1, 2, 3]);
    expect(() => readTar(tar.subarray(0, 600), 'cut.tar')).toThrow(/truncated/);

    const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-cifar-evil-'));
    const evil = path.join(root, 'evil.tar.gz');
    writeFileSync(evil, gzipSync(new Uint8Array([...header('../escaped.bin', 3, '0'), ...pad(Uint8Array.from([1, 2, 3])), ...new Uint8Array(1024)])));
    expect(() => unpackCifarArchive(evil, path.join(root, 'dest'))).toThrow(/outside/);
    expect(existsSync(path.join(root, 'escaped.bin'))).toBe(false);
  });
});
