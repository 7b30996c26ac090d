/**
 * Every error Kiln raises on purpose is a `KilnError`: it says what was expected, what was found
 * and where (a file and byte offset, a layer path, an argument name), and, where there is one, the
 * fix. Callers can branch on `code` without parsing messages.
 */
export interface KilnErrorDetails {
  /** What Kiln expected, in the user's terms. */
  expected?: string;
  /** What it found instead. */
  found?: string;
  /** Where: a file path, a layer path, an argument name. */
  where?: string;
  /** What to do about it. */
  hint?: string;
  /** The lower-level error behind this one (kept as the standard `Error.cause`). */
  cause?: unknown;
}

/** The base of Kiln's errors; its message lists where, expected, found and the fix, one per line. */
export class KilnError extends Error {
  /** Stable machine-readable kind (`E_CONFIG`, `E_SHAPE`, `E_DATA_FORMAT`, …). */
  readonly code: string;
  /** What Kiln expected, in the user's terms. */
  readonly expected?: string;
  /** What it found instead. */
  readonly found?: string;
  /** Where: a file path (and byte offset), a layer path, an argument name. */
  readonly where?: string;
  /** What to do about it. */
  readonly hint?: string;

  constructor(code: string, message: string, details: KilnErrorDetails = {}) {
    super(KilnError.compose(message, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.expected = details.expected;
    this.found = details.found;
    this.where = details.where;
    this.hint = details.hint;
  }

  private static compose(message: string, d: KilnErrorDetails): string {
    const parts = [message];
    if (d.where !== undefined) parts.push(`where: ${d.where}`);
    if (d.expected !== undefined) parts.push(`expected: ${d.expected}`);
    if (d.found !== undefined) parts.push(`found: ${d.found}`);
    if (d.hint !== undefined) parts.push(`fix: ${d.hint}`);
    return parts.join('\n  ');
  }
}

/** A bad argument or option: names the argument, the accepted values and the value given. */
export class ConfigError extends KilnError {
  constructor(argument: string, expected: string, found: unknown, hint?: string) {
    super('E_CONFIG', `invalid value for '${argument}'`, { where: argument, expected, found: describeValue(found), hint });
  }
}

/** A tensor of the wrong shape reached a layer or loss. */
export class ShapeMismatchError extends KilnError {
  constructor(where: string, expected: string, found: readonly number[] | string, hint?: string) {
    super('E_SHAPE', `shape mismatch in ${where}`, {
      where,
      expected,
      found: typeof found === 'string' ? found : `[${found.join(', ')}]`,
      hint,
    });
  }
}

/** A data, weight or checkpoint file that is not what it claims to be. */
export class DataFormatError extends KilnError {
  /** The file at fault. */
  readonly file: string;
  /** Byte offset of the problem in the file, when it has one. */
  readonly offset?: number;
  constructor(file: string, problem: string, details: { offset?: number; expected?: string; found?: string; hint?: string } = {}) {
    const where = details.offset === undefined ? file : `${file} at byte ${details.offset}`;
    super('E_DATA_FORMAT', problem, { where, expected: details.expected, found: details.found, hint: details.hint });
    this.file = file;
    this.offset = details.offset;
  }
}

/** A requested backend cannot run here; carries the reason and the install step or setting that fixes it. */
export class BackendUnavailableError extends KilnError {
  /** The backend asked for (`auto` when none was registered at all). */
  readonly backend: string;
  /** The reason in one sentence, without the "backend is not available" preamble. */
  readonly reason: string;
  /** The command or setting that fixes it, when there is one. */
  readonly fix?: string;
  /** The other backends the run could have asked for, each with why it cannot run when it cannot. */
  readonly alternatives: readonly BackendStatus[];
  constructor(backend: string, reason: string, install?: string, cause?: unknown, alternatives: readonly BackendStatus[] = []) {
    super('E_BACKEND_UNAVAILABLE', `backend '${backend}' is not available: ${reason}`, { where: backend, hint: install, cause });
    this.backend = backend;
    this.reason = reason;
    this.fix = install;
    this.alternatives = alternatives;
    if (alternatives.length > 0) {
      const listed = alternatives.map((a) => (a.available ? `${a.name} (available)` : `${a.name} (unavailable: ${a.reason ?? 'its probe failed'})`));
      this.message += `\n  registered: ${listed.join(', ')}`;
    }
  }
}

/** A registered backend and whether it can run here (see `BackendUnavailableError.alternatives`). */
export interface BackendStatus {
  /** The backend's name. */
  name: string;
  /** Whether its probe said it can run here. */
  available: boolean;
  /** When unavailable: why, in one sentence. */
  reason?: string;
}

/** A file or resource could not be found in any of the places Kiln looked. */
export class NotFoundError extends KilnError {
  constructor(what: string, looked: readonly string[], hint?: string) {
    super('E_NOT_FOUND', `${what} not found`, { expected: `one of: ${looked.join(', ')}`, hint });
  }
}

/**
 * A Node-only function (it reads the file system, spawns workers or uses `sharp`) was called from a
 * browser build. Names the function and, where there is one, the browser way to do the same thing.
 */
export class NodeOnlyError extends KilnError {
  /** The function or class that needs Node (`readIdxFile`, `FileStorage`, …). */
  readonly api: string;
  constructor(api: string, instead?: string) {
    super('E_NODE_ONLY', `${api} needs Node.js (files, workers or native modules) and is not in the browser build`, { where: api, hint: instead });
    this.api = api;
  }
}

/** A value as it appears in an error message: JSON where it can be, `String(v)` otherwise. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
