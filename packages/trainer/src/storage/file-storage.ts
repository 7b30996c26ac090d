/**
 * Node's storage: plain files, written through `@kiln/core/node` (crash-safe writes, checked reads,
 * names confined to a directory). This module is the trainer's only user of `node:fs`.
 */
import { appendFileSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { readFileChecked, removeStaleTempFiles, resolveInside, writeFileAtomic } from '@kiln/core/node';
import type { Storage } from './storage.js';

/** Files on disk; names are paths (relative ones from the working directory). */
export class FileStorage implements Storage {
  readonly description = 'files';

  join(dir: string, name: string): string {
    return path.join(dir, name);
  }

  inside(dir: string, name: string, argument: string): string {
    // resolveInside answers an absolute path; the name stays as relative as the directory was given.
    return path.join(dir, path.relative(dir, resolveInside(dir, name, argument)));
  }

  isDirectlyIn(dir: string, name: string): boolean {
    return path.resolve(path.dirname(name)) === path.resolve(dir);
  }

  async read(name: string, what = 'file'): Promise<Uint8Array> {
    return readFileChecked(name, { what });
  }

  async write(name: string, data: Uint8Array | string): Promise<void> {
    writeFileAtomic(name, data);
  }

  async append(name: string, data: Uint8Array | string): Promise<void> {
    mkdirSync(path.dirname(name), { recursive: true });
    appendFileSync(name, data);
  }

  async exists(name: string): Promise<boolean> {
    try {
      return existsSync(name) && lstatSync(name).isFile();
    } catch {
      return false;
    }
  }

  async remove(name: string): Promise<void> {
    rmSync(name, { force: true });
  }

  async list(dir: string): Promise<string[]> {
    try {
      return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
    } catch {
      return [];
    }
  }

  async cleanUp(dir: string): Promise<void> {
    removeStaleTempFiles(dir);
  }
}
