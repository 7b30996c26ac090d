import { ConfigError } from '@kiln/core';
import { UsageError } from './errors.js';

/** Typed readers for parsed option strings; each error names the flag and what it accepts. */
export function intArg(flag: string, v: string | undefined, def: number, min = 1): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${flag}`, `an integer >= ${min}`, v);
  return n;
}

export function floatArg(flag: string, v: string | undefined, def: number, check: (n: number) => boolean = (n) => n > 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || !check(n)) throw new ConfigError(`--${flag}`, 'a positive number', v);
  return n;
}

export function choiceArg<T extends string>(flag: string, v: string | undefined, def: T, choices: readonly T[]): T {
  if (v === undefined) return def;
  if (!choices.includes(v as T)) throw new ConfigError(`--${flag}`, `one of: ${choices.join(', ')}`, v);
  return v as T;
}

/**
 * The sub-command of `kiln <command> <sub> …` (`kiln tune lr`, `kiln data preview`): one of
 * `choices`, or a usage error that says whether it was missing or unknown, with the command's usage.
 */
export function subCommandArg<T extends string>(command: string, given: string | undefined, choices: readonly T[], usage: string): T {
  if (given !== undefined && choices.includes(given as T)) return given as T;
  throw new UsageError(given === undefined ? 'missing sub-command' : `unknown sub-command '${command} ${given}'`, usage);
}
