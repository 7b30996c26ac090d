import { readFileSync } from 'node:fs';
import { ConfigError, DataFormatError, NotFoundError } from '@kiln/core';
import { asha, choice, intUniform, logUniform, uniform, type Distribution, type PrunerConfig } from '@kiln/trainer';
import { parseFlatYaml } from '../commands/run-config.js';
import { TRAIN_OPTIONS } from '../commands/train.js';

/** `kiln train` flags a study fixes or searches; the study itself decides output, resume and folds. */
export const STUDY_TRAIN_FLAGS = Object.keys(TRAIN_OPTIONS).filter((k) => !['out', 'resume', 'config', 'folds', 'fold'].includes(k));

/** Keys of a study file besides `kiln train`'s flags. */
export const STUDY_KEYS = ['trials', 'folds', 'search', 'sampler', 'search-seed', 'monitor', 'mode', 'prune', 'grace-period', 'reduction-factor', 'attempts'] as const;

/** A searched flag: a distribution to sample (random search) or the values to try. */
export type SearchEntry = { kind: 'values'; values: unknown[] } | { kind: 'distribution'; distribution: Distribution<unknown> };

export interface Study {
  file: string;
  /** Train flags every trial gets, as flag strings. */
  flags: Record<string, string>;
  search: Record<string, SearchEntry>;
  sampler: 'random' | 'grid';
  /** Random search: how many trials. */
  trials?: number;
  /** Cross-validate each trial on this many folds. */
  folds?: number;
  searchSeed: number;
  monitor: string;
  mode: 'min' | 'max';
  pruner?: PrunerConfig;
  /** Starts per trial on a queue before it is reported failed. */
  attempts: number;
}

/**
 * Reads a study file: JSON, or YAML with `kiln train`'s flags as keys, `trials`, `folds`, and a
 * `search:` block mapping flags to a list of values or to `uniform(a, b)`, `loguniform(a, b)`,
 * `intuniform(a, b)` or `choice(x, y, …)`.
 */
export function readStudyFile(file: string): Study {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new NotFoundError(`study file ${file}`, [file], (e as Error).message);
  }
  return parseStudy(text, file);
}

export function parseStudy(text: string, file = '<study>'): Study {
  const raw = /\.json$/i.test(file) || /^\s*\{/.test(text) ? parseJsonObject(text, file) : parseStudyYaml(text, file);
  const flags: Record<string, string> = {};
  const known = [...STUDY_TRAIN_FLAGS, ...STUDY_KEYS];
  for (const [k, v] of Object.entries(raw)) {
    if (!known.includes(k)) throw new ConfigError(`${file}: ${k}`, `one of: ${known.join(', ')}`, k, k === 'out' ? 'give the study directory with kiln search --out DIR' : undefined);
    if ((STUDY_KEYS as readonly string[]).includes(k) || v === null || v === undefined) continue;
    if (typeof v === 'boolean' || typeof v === 'object') throw new ConfigError(`${file}: ${k}`, 'a single value (search a flag under search:)', JSON.stringify(v));
    flags[k] = String(v);
  }
  if (flags.model === undefined) throw new ConfigError(`${file}: model`, 'a model for the trials (e.g. model: lenet5)', undefined);

  const searchRaw = raw.search ?? {};
  if (typeof searchRaw !== 'object' || Array.isArray(searchRaw) || searchRaw === null) throw new ConfigError(`${file}: search`, 'a mapping of flags to values or distributions', JSON.stringify(searchRaw));
  const search: Record<string, SearchEntry> = {};
  for (const [k, v] of Object.entries(searchRaw as Record<string, unknown>)) {
    if (!STUDY_TRAIN_FLAGS.includes(k)) throw new ConfigError(`${file}: search.${k}`, `a kiln train flag (${STUDY_TRAIN_FLAGS.join(', ')})`, k);
    if (k in flags) throw new ConfigError(`${file}: ${k}`, 'a flag either fixed or searched, not both', k);
    search[k] = searchEntry(v, `${file}: search.${k}`);
  }

  const int = (k: string, min: number): number | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new ConfigError(`${file}: ${k}`, `an integer >= ${min}`, v);
    return n;
  };
  const trials = int('trials', 1);
  const folds = int('folds', 2);
  const allLists = Object.values(search).every((e) => e.kind === 'values');
  const sampler = raw.sampler === undefined ? (trials === undefined && allLists ? 'grid' : 'random') : String(raw.sampler);
  if (sampler !== 'random' && sampler !== 'grid') throw new ConfigError(`${file}: sampler`, 'random or grid', sampler);
  if (sampler === 'grid' && !allLists) throw new ConfigError(`${file}: sampler`, 'lists of values for every searched flag in a grid search', Object.keys(search).filter((k) => search[k].kind !== 'values').join(', '));
  if (sampler === 'random' && trials === undefined) throw new ConfigError(`${file}: trials`, 'the number of trials of a random search (trials: N)', undefined);
  const monitor = raw.monitor === undefined ? 'val_loss' : String(raw.monitor);
  const mode = raw.mode === undefined ? (/acc/.test(monitor) ? 'max' : 'min') : String(raw.mode);
  if (mode !== 'min' && mode !== 'max') throw new ConfigError(`${file}: mode`, 'min or max', mode);
  const prune = raw.prune === undefined || raw.prune === null ? 'none' : String(raw.prune);
  if (prune !== 'none' && prune !== 'asha') throw new ConfigError(`${file}: prune`, 'asha or none', prune);
  const pruner = prune === 'asha' ? asha({ metric: monitor, mode, gracePeriod: int('grace-period', 1), reductionFactor: raw['reduction-factor'] === undefined ? undefined : Number(raw['reduction-factor']), maxEpochs: 'epochs' in search ? undefined : flags.epochs === undefined ? 2 : Number(flags.epochs) }) : undefined;
  return { file, flags, search, sampler, trials, folds, searchSeed: int('search-seed', 0) ?? 0, monitor, mode, pruner, attempts: int('attempts', 1) ?? 3 };
}

const DISTRIBUTION = /^(uniform|loguniform|intuniform|choice)\s*\((.*)\)$/i;

function searchEntry(v: unknown, where: string): SearchEntry {
  if (Array.isArray(v)) {
    if (v.length === 0) throw new ConfigError(where, 'at least one value', '[]');
    return { kind: 'values', values: v.map((x) => (typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x)) ? Number(x) : x)) };
  }
  const m = typeof v === 'string' ? DISTRIBUTION.exec(v.trim()) : null;
  if (!m) throw new ConfigError(where, 'a list [a, b, …] or uniform(a, b), loguniform(a, b), intuniform(a, b), choice(a, b, …)', JSON.stringify(v));
  const args = m[2].split(',').map((s) => s.trim().replace(/^(['"])(.*)\1$/, '$2')).filter((s) => s !== '');
  const name = m[1].toLowerCase();
  if (name === 'choice') return { kind: 'distribution', distribution: choice(args) };
  const nums = args.map(Number);
  if (nums.length !== 2 || nums.some((n) => !Number.isFinite(n))) throw new ConfigError(where, `${name}(low, high) with two numbers`, v);
  const [a, b] = nums;
  const distribution = name === 'uniform' ? uniform(a, b) : name === 'loguniform' ? logUniform(a, b) : intUniform(a, b);
  return { kind: 'distribution', distribution };
}

function parseJsonObject(text: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataFormatError(file, `study is not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DataFormatError(file, 'a study must be a JSON object');
  return v as Record<string, unknown>;
}

/** The run-config YAML subset plus one nested block, `search:`, whose indented lines are flag: value. */
function parseStudyYaml(text: string, file: string): Record<string, unknown> {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /^search\s*:\s*(#.*)?$/.test(l));
  if (start < 0) return parseFlatYaml(text, file);
  let end = start + 1;
  while (end < lines.length && (/^\s+\S/.test(lines[end]) || lines[end].trim() === '')) end++;
  const block = lines.slice(start + 1, end);
  const indent = Math.min(...block.filter((l) => l.trim() && !/^\s*#/.test(l)).map((l) => /^\s*/.exec(l)![0].length));
  const outer = parseFlatYaml([...lines.slice(0, start), ...lines.slice(end)].join('\n'), file);
  const search = parseFlatYaml(block.map((l) => l.slice(Number.isFinite(indent) ? indent : 0)).join('\n'), `${file} (search:)`);
  return { ...outer, search };
}
