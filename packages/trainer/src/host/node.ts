/**
 * The trainer's host adapter for Node: files on disk. The browser build (`dist/index.browser.js`,
 * the package's `browser` export condition) is compiled with `./browser.ts` in place of this module
 * (`kiln.browserReplace` in package.json), so no `node:` import reaches a bundle.
 */
import os from 'node:os';
import { readFileChecked } from '@kiln/core/node';
import { FileStorage } from '../storage/file-storage.js';
import type { Storage } from '../storage/storage.js';

export { FileStorage };

/** Where checkpoints and logs go when no storage is given: files, relative to the working directory. */
export function defaultStorage(): Storage {
  return new FileStorage();
}

/** Reads a whole file synchronously (`readCheckpoint(file)`): a checked read of a regular file. */
export function readFileSyncOnHost(file: string, what: string): Uint8Array {
  return readFileChecked(file, { what });
}

/** This process, as TensorBoard's event file names expect it: `<hostname>.<pid>`. */
export function processLabel(): string {
  return `${os.hostname()}.${process.pid}`;
}
