import type { Logger } from '../logger.js';
import { defaultStorage } from '../host/node.js';
import { readText, type Storage } from '../storage/storage.js';
import { learningCurves } from './learning-curves.js';
import { WriteQueue } from './write-queue.js';

/** Options of `CsvLogger`. */
export interface CsvLoggerOptions {
  /** Directory for `metrics.csv`. */
  dir: string;
  /** Default `metrics.csv`. */
  filename?: string;
  /** Only rows that carry an `epoch` metric and epoch-level values (default true: one row per epoch). */
  epochsOnly?: boolean;
  /**
   * At the end of the run write `learning-curves.png` and `learning-curves.svg` (train/val loss and
   * accuracy per epoch, the best epoch marked) beside the CSV (default true).
   */
  curves?: boolean;
  /** Metric whose best epoch the curves mark (default `val_loss` when logged, else `train_loss`). */
  monitor?: string;
  /** Whether `monitor` is best at its lowest or highest (default: from its name, `max` for accuracies). */
  mode?: 'min' | 'max';
  /** Where to write (default the host's: files in Node, IndexedDB in browsers). */
  storage?: Storage;
}

/**
 * Appends one CSV row per logged record. Each row is flushed as it is written, so a crash loses
 * nothing already logged; when a new metric appears, the file is rewritten with the wider header.
 */
export class CsvLogger implements Logger {
  readonly name = 'csv';
  /** Path of the file written. */
  readonly file: string;
  /** Where the file is written. */
  readonly storage: Storage;
  private columns: string[] = [];
  private rows: Record<string, number>[] = [];
  private readonly queue = new WriteQueue();
  private loaded = false;

  constructor(private readonly options: CsvLoggerOptions) {
    this.storage = options.storage ?? defaultStorage();
    this.file = this.storage.join(options.dir, options.filename ?? 'metrics.csv');
  }

  /** Before the first write: clears temporary files of killed writers and reads the rows an earlier run left. */
  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    await this.storage.cleanUp(this.options.dir);
    const text = await readText(this.storage, this.file);
    if (text === undefined) return;
    // A process killed mid-append leaves a last line without its newline: that row was never complete.
    const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
    if (lines.length === 0) return;
    this.columns = lines[0].split(',');
    this.rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [this.columns[i], v === '' ? NaN : Number(v)])));
  }

  logMetrics(metrics: Record<string, number>, step: number): Promise<void> {
    if ((this.options.epochsOnly ?? true) && metrics.epoch === undefined) return Promise.resolve();
    return this.queue.run(async () => {
      await this.load();
      const row = { step, ...metrics };
      this.rows.push(row);
      const fresh = Object.keys(row).filter((k) => !this.columns.includes(k));
      if (fresh.length > 0 || !(await this.storage.exists(this.file))) {
        this.columns.push(...fresh);
        // A new column rewrites the whole file: atomically, so a crash leaves the old file or the new one.
        await this.storage.write(this.file, this.text());
      } else {
        await this.storage.append(this.file, this.format(row) + '\n');
      }
    });
  }

  /** Drops rows an interrupted run logged after its checkpoint (see `Logger.onResume`), rewriting the file atomically. */
  onResume(step: number, midEpoch: boolean): Promise<void> {
    return this.queue.run(async () => {
      await this.load();
      const kept = this.rows.filter((r) => !(r.step > step || (midEpoch && r.step === step && Number.isFinite(r.epoch))));
      if (kept.length === this.rows.length && (await this.storage.exists(this.file))) return;
      this.rows = kept;
      await this.storage.write(this.file, this.text());
    });
  }

  /** Writes the learning curves (PNG and SVG) of every epoch row logged so far. */
  finalize(): Promise<void> {
    return this.queue.run(async () => {
      if (!(this.options.curves ?? true) || this.rows.length === 0) return;
      const chart = learningCurves(this.rows, { monitor: this.options.monitor, mode: this.options.mode });
      await this.storage.write(this.storage.join(this.options.dir, 'learning-curves.svg'), chart.svg());
      await this.storage.write(this.storage.join(this.options.dir, 'learning-curves.png'), chart.png());
    });
  }

  private text(): string {
    return [this.columns.join(','), ...this.rows.map((r) => this.format(r))].join('\n') + '\n';
  }

  private format(r: Record<string, number>): string {
    return this.columns.map((c) => (r[c] === undefined || Number.isNaN(r[c]) ? '' : String(r[c]))).join(',');
  }
}
