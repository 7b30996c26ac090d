import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { removeStaleTempFiles, writeFileAtomic } from '@kiln/core/node';
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
    removeStaleTempFiles(options.dir);
  }

  logHyperparams(params: Record<string, unknown>): void {
    appendFileSync(this.file, JSON.stringify({ type: 'hparams', ...params }) + '\n');
  }

  logMetrics(metrics: Record<string, number>, step: number): void {
    // JSON has no NaN/Infinity; write them as strings so no row is lost.
    const clean = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Number.isFinite(v) ? v : String(v)]));
    appendFileSync(this.file, JSON.stringify({ type: 'metrics', step, wall_time: Date.now() / 1000, ...clean }) + '\n');
  }

  /**
   * Drops metric lines an interrupted run logged after its checkpoint (see `Logger.onResume`), and
   * a torn last line (a process killed mid-append), rewriting the file atomically. Other lines
   * (hparams, run ends) stay.
   */
  onResume(step: number, midEpoch: boolean): void {
    if (!existsSync(this.file)) return;
    const text = readFileSync(this.file, 'utf8');
    const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
    const kept = lines.filter((l) => {
      try {
        const o = JSON.parse(l) as { type?: string; step?: number; epoch?: unknown };
        if (o.type !== 'metrics' || typeof o.step !== 'number') return true;
        return !(o.step > step || (midEpoch && o.step === step && o.epoch !== undefined));
      } catch {
        return false;
      }
    });
    writeFileAtomic(this.file, kept.map((l) => l + '\n').join(''));
  }

  finalize(status: 'success' | 'failed' | 'interrupted'): void {
    appendFileSync(this.file, JSON.stringify({ type: 'end', status }) + '\n');
  }
}
