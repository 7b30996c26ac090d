import { KilnError } from '@kiln/core';

/**
 * Where a run keeps what it writes: checkpoints, metric logs, event files, profiler reports. The
 * trainer, `ModelCheckpoint` and the file loggers only talk to this interface, so the same code
 * writes files in Node (`FileStorage`) and IndexedDB records in a browser (`IndexedDbStorage`).
 * A checkpoint is the same bytes in both, so one saved in a browser resumes in Node and back.
 *
 * Names are paths with `/` separators (`checkpoints/last.ckpt`); each storage decides what they
 * mean (relative to the working directory for files, a key for IndexedDB).
 */
export interface Storage {
  /** Where the names point, for messages (`files`, `IndexedDB 'kiln'`). */
  readonly description: string;
  /** `name` inside the directory `dir`, as this storage spells paths. */
  join(dir: string, name: string): string;
  /**
   * `name` inside `dir`, refusing names that would leave it (absolute names, `..`, NUL bytes, and on
   * disk symlinks pointing out of `dir`): a `ConfigError` naming `argument`.
   */
  inside(dir: string, name: string, argument: string): string;
  /** Whether `name` lies directly in `dir` (not in a subdirectory, not elsewhere). */
  isDirectlyIn(dir: string, name: string): boolean;
  /** The whole contents of `name`; a `NotFoundError` when there is none. `what` names it in errors. */
  read(name: string, what?: string): Promise<Uint8Array>;
  /**
   * Replaces `name` with `data` atomically: a crash leaves the old contents or the new, never a
   * mix. Missing directories are created.
   */
  write(name: string, data: Uint8Array | string): Promise<void>;
  /** Adds `data` (bytes, or text as UTF-8) at the end of `name`, creating it and its directory. */
  append(name: string, data: Uint8Array | string): Promise<void>;
  /** Whether `name` exists as a regular file (not a directory, not a symlink). */
  exists(name: string): Promise<boolean>;
  /** Deletes `name`; nothing happens when it does not exist. */
  remove(name: string): Promise<void>;
  /** Names of the files directly in `dir` (not their paths), sorted; empty when `dir` is missing. */
  list(dir: string): Promise<string[]>;
  /**
   * Clears what an interrupted writer left in `dir` (temporary files of killed processes); a no-op
   * where writes are transactions.
   */
  cleanUp(dir: string): Promise<void>;
}

/** Reads `name` from `storage` as UTF-8 text, or `undefined` when it does not exist. */
export async function readText(storage: Storage, name: string): Promise<string | undefined> {
  if (!(await storage.exists(name))) return undefined;
  return new TextDecoder().decode(await storage.read(name));
}

/** The contents of `name` as a `Blob` (for `URL.createObjectURL`, uploads, or `downloadFile`). */
export async function storageBlob(storage: Storage, name: string, type = 'application/octet-stream'): Promise<Blob> {
  const bytes = await storage.read(name);
  return new Blob([bytes as BlobPart], { type });
}

/**
 * Saves `name` from `storage` to the user's downloads (a browser page only): returns the `Blob`
 * handed to the download, whose file name is `filename` (default: the last segment of `name`).
 */
export async function downloadFile(storage: Storage, name: string, filename = name.split('/').pop() ?? name): Promise<Blob> {
  const doc = (globalThis as { document?: Document }).document;
  if (!doc) throw new KilnError('E_BROWSER_ONLY', 'downloadFile needs a browser page (a document to click a link in)', { where: name, hint: 'in Node, the file is already on disk; use storage.read(name) for its bytes' });
  const blob = await storageBlob(storage, name);
  const url = URL.createObjectURL(blob);
  const a = doc.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  // The click starts the download synchronously; the URL only has to outlive it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return blob;
}
