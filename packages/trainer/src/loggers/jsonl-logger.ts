import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger.js';

/** Options of `JsonlLogger`. */
export interface JsonlLoggerOptions {
  /** Directory for the file. */
  dir: string;
  /** Default `metrics.jsonl`. */
  filename?: string;
}

/**
 * One JSON object per line: `{"type":"hparams",...}` once, then `{"type":"metrics","step":…,…}`.
 * Lines are appended as they come, so the file can be tailed and survives a crash.
 */
export class JsonlLogger implements Logger {
  readonly name = 'jsonl';
  /** Path of the file written. */
  readonly file: string;

  constructor(options: JsonlLoggerOptions) {
    mkdirSync(options.dir, { recursive: true });
    this.file = path.join(options.dir, options.filename ?? 'metrics.jsonl');
  }

  logHyperparams(params: Record<string, unknown>): void {
    appendFileSync(this.file, JSON.stringify({ type: 'hparams', ...params }) + '\n');
  }

  logMetrics(metrics: Record<string, number>, step: number): void {
    // JSON has no NaN/Infinity; write them as strings so no row is lost.
    const clean = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Number.isFinite(v) ? v : String(v)]));
    appendFileSync(this.file, JSON.stringify({ type: 'metrics', step, wall_time: Date.now() / 1000, ...clean }) + '\n');
  }

  finalize(status: 'success' | 'failed' | 'interrupted'): void {
    appendFileSync(this.file, JSON.stringify({ type: 'end', status }) + '\n');
  }
}
