import { ConfigError } from '@kiln/core';

/**
 * Paths for storages without a file system (IndexedDB): `/`-separated keys, normalised so that
 * `./a//b/` and `a/b` name the same record. No `..` survives: a key never points above its root.
 */
export function normalizeKey(name: string): string {
  const parts: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.join('/');
}

/** `name` under `dir`, normalised. */
export function joinKey(dir: string, name: string): string {
  return normalizeKey(`${dir}/${name}`);
}

/** The directory part of a key (`''` for a top-level name). */
export function keyDir(name: string): string {
  const n = normalizeKey(name);
  const at = n.lastIndexOf('/');
  return at < 0 ? '' : n.slice(0, at);
}

/** The same checks as `resolveInside` on disk, for keys: relative, no `..` segment, no NUL byte. */
export function keyInside(dir: string, name: string, argument: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new ConfigError(argument, 'a non-empty relative file name', name);
  if (name.includes('\0')) throw new ConfigError(argument, 'a file name without NUL bytes', name);
  if (name.startsWith('/')) throw new ConfigError(argument, `a name relative to ${dir}`, name);
  if (name.split('/').includes('..')) throw new ConfigError(argument, `a name that stays inside ${dir} (no '..')`, name);
  return joinKey(dir, name);
}
