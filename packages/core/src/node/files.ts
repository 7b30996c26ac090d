/**
 * Node host adapter for files: the one place Kiln's Node code opens files it did not create, writes
 * files that must survive a crash, and turns user-supplied names into paths under a root. Imported
 * as `@kiln/core/node`; browser builds never load it.
 */
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, DataFormatError, KilnError, NotFoundError } from '../errors.js';

/** Default size limit of {@link readFileChecked}: larger than any weight file of the zoo (VGG-19: 548 MB). */
export const DEFAULT_MAX_FILE_BYTES = 2 ** 31 - 1;

export interface ReadFileOptions {
  /** Refuse files larger than this many bytes (default {@link DEFAULT_MAX_FILE_BYTES}). */
  maxBytes?: number;
  /** What the file is, for messages ("checkpoint", "IDX file"). */
  what?: string;
}

/**
 * Reads a whole regular file, refusing anything else before reading a byte: a FIFO would block the
 * process forever and a device such as /dev/zero never ends, so the file is opened non-blocking and
 * checked with fstat on the open descriptor (no race with a swap between check and read). The size
 * is checked against `maxBytes` before allocating, and a file that grows while being read is cut at
 * the size fstat reported.
 */
export function readFileChecked(file: string, options: ReadFileOptions = {}): Uint8Array {
  const what = options.what ?? 'file';
  const max = options.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`${what} '${file}'`, [file]);
    if (code === 'EISDIR') throw new DataFormatError(file, `${what} is a directory`, { expected: 'a regular file' });
    throw new KilnError('E_IO', `cannot open ${what} '${file}'`, { where: file, found: (e as Error).message });
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new DataFormatError(file, `${what} is a directory`, { expected: 'a regular file' });
    if (!st.isFile()) throw new DataFormatError(file, `${what} is not a regular file`, { expected: 'a regular file', found: specialKind(st) });
    if (st.size > max) throw new DataFormatError(file, `${what} is larger than the limit`, { expected: `at most ${max} bytes`, found: `${st.size} bytes` });
    const out = new Uint8Array(st.size);
    let at = 0;
    while (at < out.length) {
      const n = readSync(fd, out, at, out.length - at, at);
      if (n === 0) break;
      at += n;
    }
    if (at < out.length) throw new DataFormatError(file, `${what} shrank while being read`, { expected: `${out.length} bytes`, found: `${at}` });
    return out;
  } finally {
    closeSync(fd);
  }
}

function specialKind(st: ReturnType<typeof fstatSync>): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

/**
 * Writes `bytes` so that a crash at any moment leaves either the old file or the new one: a
 * temporary file in the same directory is written and fsynced, renamed over `file` (atomic on
 * POSIX), and the directory is fsynced so the rename itself survives a power cut. The temporary file
 * is removed on failure.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
      let at = 0;
      while (at < buf.length) at += writeSync(fd, buf, at, buf.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EROFS' || code === 'ENOSPC') {
      throw new KilnError('E_IO', `cannot write '${file}'`, { where: file, found: (e as Error).message, hint: code === 'EISDIR' ? 'give a file name, not a directory' : undefined });
    }
    throw e;
  }
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  }
}

/** Temporary names {@link writeFileAtomic} uses: `.<name>.tmp-<pid>-<random>`. */
const TEMP_NAME = /^\..+\.tmp-(\d+)-[a-z0-9]+$/;

/**
 * Removes temporary files that {@link writeFileAtomic} left in `dir` when its process was killed
 * (SIGKILL cannot be caught, so the writer cannot clean up): those whose process no longer runs.
 * Returns the names removed.
 */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The path of `name` inside `root`, refusing names that would leave it: absolute paths, `..`
 * segments, NUL bytes, and (when `root` exists) symlinks inside the root that point out of it.
 * `argument` names the option the name came from, for the error.
 */
export function resolveInside(root: string, name: string, argument: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new ConfigError(argument, 'a non-empty relative file name', name);
  if (name.includes('\0')) throw new ConfigError(argument, 'a file name without NUL bytes', name);
  if (path.isAbsolute(name)) throw new ConfigError(argument, `a name relative to ${root}`, name);
  const parts = name.split(/[\\/]/);
  if (parts.includes('..')) throw new ConfigError(argument, `a name that stays inside ${root} (no '..')`, name);
  const full = path.resolve(root, name);
  const rootAbs = path.resolve(root);
  if (full !== rootAbs && !full.startsWith(rootAbs + path.sep)) throw new ConfigError(argument, `a name that stays inside ${root}`, name);
  // Symlinks: compare real paths of the deepest existing ancestor.
  let probe = path.dirname(full);
  while (probe.length > rootAbs.length && !exists(probe)) probe = path.dirname(probe);
  if (exists(probe) && exists(rootAbs)) {
    const realRoot = realpathSync(rootAbs);
    const realProbe = realpathSync(probe);
    if (realProbe !== realRoot && !realProbe.startsWith(realRoot + path.sep)) {
      throw new ConfigError(argument, `a name that stays inside ${root}`, name, `'${probe}' is a link out of the directory`);
    }
  }
  return full;
}

function exists(p: string): boolean {
  try {
    realpathSync(p);
    return true;
  } catch {
    return false;
  }
}
