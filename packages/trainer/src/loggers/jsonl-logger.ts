import type { Logger } from '../logger.js';
import { defaultStorage } from '../host/node.js';
import { readText, type Storage } from '../storage/storage.js';
import { WriteQueue } from './write-queue.js';

/** Options of `JsonlLogger`. */
export interface JsonlLoggerOptions {
  /** Directory for the file. */
  dir: string;
  /** Default `metrics.jsonl`. */
  filename?: string;
  /** Where to write (default the host's: files in Node, IndexedDB in browsers). */
  storage?: Storage;
}

/**
 * One JSON object per line: `{"type":"hparams",...}` once, then `{"type":"metrics","step":…,…}`.
 * Lines are appended as they come, so the file can be tailed and survives a crash.
 */
export class JsonlLogger implements Logger {
  readonly name = 'jsonl';
  /** Path of the file written. */
  readonly file: string;
  /** Where the file is written. */
  readonly storage: Storage;
  private readonly queue = new WriteQueue();
  private cleaned = false;

  constructor(private readonly options: JsonlLoggerOptions) {
    this.storage = options.storage ?? defaultStorage();
    this.file = this.storage.join(options.dir, options.filename ?? 'metrics.jsonl');
  }

  logHyperparams(params: Record<string, unknown>): Promise<void> {
    return this.appendLine({ type: 'hparams', ...params });
  }

  logMetrics(metrics: Record<string, number>, step: number): Promise<void> {
    // JSON has no NaN/Infinity; write them as strings so no row is lost.
    const clean = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Number.isFinite(v) ? v : String(v)]));
    return this.appendLine({ type: 'metrics', step, wall_time: Date.now() / 1000, ...clean });
  }

  private appendLine(record: Record<string, unknown>): Promise<void> {
    const line = JSON.stringify(record) + '\n';
    return this.queue.run(async () => {
      await this.cleanUp();
      await this.storage.append(this.file, line);
    });
  }

  /** Once, before the first write: temporary files a killed writer left. */
  private async cleanUp(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await this.storage.cleanUp(this.options.dir);
  }

  /**
   * Drops metric lines an interrupted run logged after its checkpoint (see `Logger.onResume`), and
   * a torn last line (a process killed mid-append), rewriting the file atomically. Other lines
   * (hparams, run ends) stay.
   */
  onResume(step: number, midEpoch: boolean): Promise<void> {
    return this.queue.run(async () => {
      await this.cleanUp();
      const text = await readText(this.storage, this.file);
      if (text !== undefined) await this.storage.write(this.file, keptLines(text, step, midEpoch));
    });
  }

  finalize(status: 'success' | 'failed' | 'interrupted'): Promise<void> {
    return this.appendLine({ type: 'end', status });
  }
}

/** The lines of a JSONL log a resume from `step` keeps, each with its newline. */
function keptLines(text: string, step: number, midEpoch: boolean): string {
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
  return kept.map((l) => l + '\n').join('');
}
