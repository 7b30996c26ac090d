import { ConfigError } from '@kiln/core';

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
