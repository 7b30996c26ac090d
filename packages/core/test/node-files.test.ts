import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataFormatError, KilnError, NotFoundError } from '@kiln/core';
import { readFileChecked, resolveInside, writeFileAtomic } from '@kiln/core/node';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kiln-files-'));

describe('readFileChecked', () => {
  it('reads regular files and names missing ones', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'a.bin'), Uint8Array.from([1, 2, 3]));
    expect([...readFileChecked(path.join(dir, 'a.bin'))]).toEqual([1, 2, 3]);
    expect(() => readFileChecked(path.join(dir, 'none.bin'), { what: 'checkpoint' })).toThrow(NotFoundError);
  });

  it('refuses a FIFO without blocking, devices, directories and oversized files', () => {
    const dir = tmp();
    const fifo = path.join(dir, 'pipe.png');
    execFileSync('mkfifo', [fifo]);
    expect(() => readFileChecked(fifo, { what: 'image' })).toThrow(/not a regular file[\s\S]*FIFO/);
    const zero = path.join(dir, 'zero.png');
    symlinkSync('/dev/zero', zero);
    expect(() => readFileChecked(zero)).toThrow(/character device/);
    expect(() => readFileChecked(dir)).toThrow(DataFormatError);
    writeFileSync(path.join(dir, 'big.bin'), new Uint8Array(1000));
    expect(() => readFileChecked(path.join(dir, 'big.bin'), { maxBytes: 999 })).toThrow(/larger than the limit/);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file behind, also when the target is a directory', () => {
    const dir = tmp();
    const f = path.join(dir, 'out.json');
    writeFileAtomic(f, '{"a":1}');
    writeFileAtomic(f, '{"a":2}');
    expect(readFileSync(f, 'utf8')).toBe('{"a":2}');
    mkdirSync(path.join(dir, 'adir'));
    expect(() => writeFileAtomic(path.join(dir, 'adir'), 'x')).toThrow(KilnError);
    expect(readdirSync(dir).sort()).toEqual(['adir', 'out.json']);
  });
});

describe('resolveInside', () => {
  it('keeps names inside the root and refuses escapes', () => {
    const root = tmp();
    expect(resolveInside(root, 'epoch=1.ckpt', 'filename')).toBe(path.join(root, 'epoch=1.ckpt'));
    expect(resolveInside(root, 'sub/x.ckpt', 'filename')).toBe(path.join(root, 'sub', 'x.ckpt'));
    for (const bad of ['../x.ckpt', 'a/../../x', '/etc/passwd', 'a\0b', '']) expect(() => resolveInside(root, bad, 'filename')).toThrow(ConfigError);
    const outside = tmp();
    symlinkSync(outside, path.join(root, 'link'));
    expect(() => resolveInside(root, 'link/x.ckpt', 'filename')).toThrow(/link out of the directory/);
  });
});
