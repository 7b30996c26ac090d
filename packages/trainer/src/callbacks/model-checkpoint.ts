import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule, StepOutput } from '../training-module.js';
import type { Batch } from '@kiln/data';
import { Monitor, type MonitorOptions } from './monitor.js';

/** Options of `ModelCheckpoint`. */
export interface ModelCheckpointOptions extends Omit<MonitorOptions, 'minDelta'> {
  /** Directory for the files (default `checkpoints`). */
  dirpath?: string;
  /**
   * File name without extension; `{epoch}`, `{step}` and `{<metric>}` (e.g. `{val_loss}`, with an
   * optional precision `{val_loss:.3f}`) are replaced. Default `epoch={epoch}-step={step}`.
   */
  filename?: string;
  /** Metric deciding which checkpoints are best; without it, every save is kept (or the last `saveTopK`). */
  monitor?: string;
  /** Keep the k best (by `monitor`) checkpoints; -1 keeps all, 0 keeps none but `last` (default 1). */
  saveTopK?: number;
  /** Also write `last.ckpt` at every save (default false). */
  saveLast?: boolean;
  /** Save every N epochs at epoch end (default 1 when `everyNSteps` is unset). */
  everyNEpochs?: number;
  /** Save every N optimizer steps (mid-epoch; 0 disables). */
  everyNSteps?: number;
  /** Name of the copy of the best checkpoint (default `best`; set '' to skip). */
  bestName?: string;
}

interface Saved {
  file: string;
  score: number | null;
}

/**
 * Saves checkpoints at epoch ends and/or every N steps, keeps the `saveTopK` best by a monitored
 * metric, and maintains `last.ckpt` and `best.ckpt`. Each file is a complete resumable checkpoint
 * (see `readCheckpoint`), written atomically.
 */
export class ModelCheckpoint implements Callback {
  readonly stateKey: string;
  /** Directory the checkpoints are written to. */
  readonly dirpath: string;
  private readonly monitor: Monitor | null;
  private saved: Saved[] = [];
  /** Path of the best checkpoint so far, and its score. */
  bestModelPath = '';
  /** Its monitored value (null before the first save, or without `monitor`). */
  bestModelScore: number | null = null;
  /** Path of the checkpoint written last. */
  lastModelPath = '';

  constructor(private readonly options: ModelCheckpointOptions = {}) {
    this.monitor = options.monitor ? new Monitor(options, 'ModelCheckpoint') : null;
    this.dirpath = options.dirpath ?? 'checkpoints';
    const k = options.saveTopK ?? 1;
    if (!Number.isInteger(k) || k < -1) throw new ConfigError('ModelCheckpoint.saveTopK', 'an integer >= -1', options.saveTopK);
    for (const f of ['everyNEpochs', 'everyNSteps'] as const) {
      const v = options[f];
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new ConfigError(`ModelCheckpoint.${f}`, 'a non-negative integer', v);
    }
    this.stateKey = `ModelCheckpoint{dir=${this.dirpath},monitor=${options.monitor ?? ''}}`;
  }

  async onTrainBatchEnd(trainer: Trainer, _m: TrainingModule, _o: StepOutput, _b: Batch, _i: number): Promise<void> {
    const n = this.options.everyNSteps ?? 0;
    // Only between optimizer steps: gradients of an open accumulation window are not in a checkpoint.
    if (n > 0 && trainer.atOptimizerStepBoundary && trainer.globalStep > 0 && trainer.globalStep % n === 0 && !trainer.epochTrainingDone) {
      await this.save(trainer, false);
    }
  }

  async onTrainEpochEnd(trainer: Trainer): Promise<void> {
    const n = this.options.everyNEpochs ?? (this.options.everyNSteps ? 0 : 1);
    if (n > 0 && (trainer.currentEpoch + 1) % n === 0) await this.save(trainer, true);
  }

  /** `{epoch}`, `{step}`, `{metric}` and `{metric:.Nf}` filled in. */
  formatName(trainer: Trainer): string {
    const template = this.options.filename ?? 'epoch={epoch}-step={step}';
    return template.replace(/\{([A-Za-z0-9_]+)(?::\.(\d+)f)?\}/g, (whole, key: string, digits?: string) => {
      const v = key === 'epoch' ? trainer.currentEpoch : key === 'step' ? trainer.globalStep : trainer.callbackMetrics[key];
      if (v === undefined) return whole;
      return digits !== undefined ? v.toFixed(Number(digits)) : key === 'epoch' || key === 'step' ? String(v) : v.toFixed(4);
    });
  }

  private async save(trainer: Trainer, epochEnd: boolean): Promise<void> {
    // A fastDevRun checks the code path only: like its loggers, it writes no checkpoints.
    if (trainer.options.fastDevRun) return;
    // Before the first validation a mid-epoch save has no score yet: it can only update last.ckpt.
    const pending = this.monitor && !epochEnd && trainer.callbackMetrics[this.monitor.monitor] === undefined;
    const score = this.monitor && !pending ? this.monitor.read(trainer, 'ModelCheckpoint') : null;
    const topK = pending ? 0 : (this.options.saveTopK ?? 1);
    let file = path.join(this.dirpath, `${this.formatName(trainer)}.ckpt`);
    if (!epochEnd && !this.options.filename) file = path.join(this.dirpath, `epoch=${trainer.currentEpoch}-step=${trainer.globalStep}.ckpt`);
    const keep = topK !== 0 && (topK === -1 || this.saved.length < topK || this.beats(score, this.worstSaved()));
    // State first, so the file itself records this callback's decision.
    if (keep) {
      this.saved.push({ file, score });
      if (this.monitor && score !== null && Number.isFinite(score) && (this.bestModelScore === null || this.monitor.improved(score, this.bestModelScore) || score === this.bestModelScore)) {
        this.bestModelScore = score;
        this.bestModelPath = file;
      }
      const evict = topK > 0 && this.saved.length > topK ? this.worstSaved() : null;
      if (evict) this.saved = this.saved.filter((s) => s !== evict);
      await trainer.saveCheckpoint(file);
      if (evict && evict.file !== file && existsSync(evict.file)) rmSync(evict.file, { force: true });
      if (this.bestModelPath === file && (this.options.bestName ?? 'best')) await trainer.saveCheckpoint(path.join(this.dirpath, `${this.options.bestName ?? 'best'}.ckpt`));
    }
    if (this.options.saveLast) {
      this.lastModelPath = path.join(this.dirpath, 'last.ckpt');
      await trainer.saveCheckpoint(this.lastModelPath);
    }
  }

  private beats(score: number | null, than: Saved | null): boolean {
    if (!this.monitor) return true; // unmonitored: newest wins
    if (score === null || !Number.isFinite(score)) return false;
    return !than || than.score === null || this.monitor.improved(score, than.score);
  }

  /** The checkpoint to drop next: the worst score, or the oldest when nothing is monitored. */
  private worstSaved(): Saved | null {
    if (this.saved.length === 0) return null;
    if (!this.monitor) return this.saved[0];
    return this.saved.reduce((w, s) => (s.score === null || (w.score !== null && this.monitor!.improved(w.score, s.score)) ? s : w));
  }

  /** Files currently kept (best first when monitored). */
  get keptFiles(): string[] {
    return this.saved.map((s) => s.file);
  }

  stateDict(): Record<string, unknown> {
    return { saved: this.saved, bestModelPath: this.bestModelPath, bestModelScore: this.bestModelScore, dirpath: this.dirpath };
  }

  loadStateDict(s: Record<string, unknown>): void {
    // Files removed since (by hand or by a later run) are forgotten.
    const present = existsSync(this.dirpath) ? new Set(readdirSync(this.dirpath).map((f) => path.join(this.dirpath, f))) : new Set<string>();
    this.saved = ((s.saved as Saved[]) ?? []).filter((x) => present.has(x.file));
    this.bestModelPath = String(s.bestModelPath ?? '');
    this.bestModelScore = (s.bestModelScore as number | null) ?? null;
  }
}
