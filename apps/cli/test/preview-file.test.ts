import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { previewFile } from '../src/commands/data-preview.js';
import { UsageError } from '../src/errors.js';

describe('kiln data preview --out', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-preview-out-'));

  it('keeps a .png name as given, whatever its case', () => {
    expect(previewFile(path.join(dir, 'grid.png'))).toBe(path.join(dir, 'grid.png'));
    expect(previewFile(path.join(dir, 'GRID.PNG'))).toBe(path.join(dir, 'GRID.PNG'));
  });

  it('adds .png to a name without an extension', () => {
    expect(previewFile(path.join(dir, 'grid'))).toBe(path.join(dir, 'grid.png'));
  });

  it('writes preview.png inside an existing directory', () => {
    expect(previewFile(dir)).toBe(path.join(dir, 'preview.png'));
  });

  it('refuses another extension, naming the flag and what it expected', () => {
    const file = path.join(dir, 'grid.jpg');
    writeFileSync(file, 'not written over');
    expect(() => previewFile(file)).toThrow(UsageError);
    expect(() => previewFile(file)).toThrow(/--out .*grid\.jpg.*\.png.*'\.jpg'/);
  });
});
