import { ConfigError, DataFormatError } from '@kiln/core';
import { readFileChecked } from '@kiln/core/node';

/** A config value as the flags take it: strings (numbers and lists are written back as text). */
export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * Reads `--config FILE`: a JSON object or a flat YAML mapping whose keys are the long flag names
 * (`epochs: 5`, `early-stopping: 3`, `logger: [csv, tensorboard]`). Values become flag strings, so
 * a config file and the command line are checked by the same code; flags given on the command line win.
 */
export function readRunConfig(file: string, known: readonly string[]): FlagValues {
  // A config is small: a FIFO, a device or a huge file is refused before it is read.
  const text = new TextDecoder('utf-8').decode(readFileChecked(file, { what: 'config file', maxBytes: 1 << 20 }));
  const raw = /\.json$/i.test(file) || /^\s*\{/.test(text) ? parseJson(text, file) : parseFlatYaml(text, file);
  const out: FlagValues = Object.create(null);
  for (const [k, v] of Object.entries(raw)) {
    if (!known.includes(k)) throw new ConfigError(`${file}: ${k}`, `one of: ${known.join(', ')}`, k);
    out[k] = typeof v === 'boolean' ? v : Array.isArray(v) ? v.join(',') : v === null ? undefined : String(v);
  }
  return out;
}

function parseJson(text: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataFormatError(file, `config is not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DataFormatError(file, 'config must be a JSON object of flag names to values');
  return v as Record<string, unknown>;
}

/** The YAML subset a run config needs: `key: scalar` and `key: [a, b]` or block lists, `#` comments. */
export function parseFlatYaml(text: string, file = '<yaml>'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let listKey: string | null = null;
  text.split(/\r?\n/).forEach((line, i) => {
    const clean = line.replace(/(^|\s)#.*$/, '').trimEnd();
    if (!clean.trim() || clean.trim() === '---') return;
    const item = /^\s+-\s*(.*)$/.exec(clean);
    if (item && listKey) {
      (out[listKey] as unknown[]).push(scalar(item[1]));
      return;
    }
    const m = /^([A-Za-z][\w-]*)\s*:\s*(.*)$/.exec(clean);
    if (!m) throw new DataFormatError(file, `line ${i + 1}: expected 'key: value'`, { found: line.trim() });
    const [, key, value] = m;
    listKey = null;
    if (value === '') {
      out[key] = [];
      listKey = key;
    } else if (/^\[.*\]$/.test(value)) {
      out[key] = value.slice(1, -1).split(',').map((s) => scalar(s.trim())).filter((s) => s !== '');
    } else {
      out[key] = scalar(value);
    }
  });
  return out;
}

function scalar(s: string): unknown {
  const t = s.trim();
  if (/^(['"]).*\1$/.test(t)) return t.slice(1, -1);
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'null' || t === '~') return null;
  return t;
}
