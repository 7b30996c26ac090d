import { tf, ConfigError } from '@kiln/core';
import { defaultStorage } from '../host/node.js';
import type { Storage } from '../storage/storage.js';
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
  /** Its `onTrainEpochEnd` runs after the module's, seeing what that logged (Lightning's monitoring callbacks). */
  readonly monitorsMetrics = true;
  /** Directory the checkpoints are written to. */
  readonly dirpath: string;
  private readonly monitor: Monitor | null;
  private saved: Saved[] = [];
  /** The trainer's storage, known from `setup` on (the host's default before). */
  private storage: Storage = defaultStorage();
  /** Path of the best checkpoint so far, and its score. */
  bestModelPath = '';
  /** Its monitored value (null before the first save, or without `monitor`). */
  bestModelScore: number | null = null;
  /** Path of the checkpoint written last. */
  lastModelPath = '';
  /** Saves refused because the weights were not finite. */
  skippedNonFinite = 0;

  constructor(private readonly options: ModelCheckpointOptions = {}) {
    this.monitor = options.monitor ? new Monitor(options, 'ModelCheckpoint') : null;
    this.dirpath = options.dirpath ?? 'checkpoints';
    const k = options.saveTopK ?? 1;
    if (!Number.isInteger(k) || k < -1) throw new ConfigError('ModelCheckpoint.saveTopK', 'an integer >= -1', options.saveTopK);
    for (const f of ['everyNEpochs', 'everyNSteps'] as const) {
      const v = options[f];
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new ConfigError(`ModelCheckpoint.${f}`, 'a non-negative integer', v);
    }
    // Templates are checked once with placeholders filled by harmless values, and every name again at save time.
    // (With the host's storage: the trainer's, which names the files later, is not known yet.)
    const names = defaultStorage();
    if (options.filename !== undefined) names.inside(this.dirpath, `${options.filename.replace(/\{[^}]*\}/g, '0')}.ckpt`, 'ModelCheckpoint.filename');
    if (options.bestName) names.inside(this.dirpath, `${options.bestName}.ckpt`, 'ModelCheckpoint.bestName');
    this.stateKey = `ModelCheckpoint{dir=${this.dirpath},monitor=${options.monitor ?? ''}}`;
  }

  /** A run killed while writing a checkpoint left its temporary file behind: remove it. */
  async setup(trainer: Trainer): Promise<void> {
    this.storage = trainer.storage;
    await trainer.storage.cleanUp(this.dirpath);
  }

  /** Forgets restored files that are gone from the trainer's storage (deleted by hand since the checkpoint). */
  async onFitStart(trainer: Trainer): Promise<void> {
    const present = await Promise.all(this.saved.map((s) => trainer.storage.exists(s.file)));
    this.saved = this.saved.filter((_, i) => present[i]);
    if (this.bestModelPath && !(await trainer.storage.exists(this.bestModelPath))) {
      this.bestModelPath = '';
      this.bestModelScore = null;
    }
  }

  async onTrainBatchEnd(trainer: Trainer, _m: TrainingModule, _o: StepOutput, _b: Batch, _i: number): Promise<void> {
    const n = this.options.everyNSteps ?? 0;
    // Only between optimizer steps: gradients of an open accumulation window are not in a checkpoint.
    if (n > 0 && trainer.atOptimizerStepBoundary && trainer.globalStep > 0 && trainer.globalStep % n === 0 && !trainer.epochTrainingDone) {
      await this.save(trainer, false);
    }
  }

  /** A validation inside the epoch (`valCheckInterval`) is a moment to keep a better model, as in Lightning. */
  async onValidationEnd(trainer: Trainer): Promise<void> {
    if (this.monitor && trainer.stage === 'fit' && !trainer.sanityChecking && !trainer.epochTrainingDone && trainer.freshMetrics.has(this.monitor.monitor)) await this.save(trainer, false);
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
    // Without a current value of the monitored metric (a step-interval save between validations, an
    // epoch that did not validate) the save has no score: it can only update last.ckpt, so best.ckpt
    // is always weights that were validated.
    const current = this.monitor ? this.monitor.current(trainer, 'ModelCheckpoint') : undefined;
    const pending = !!this.monitor && current === undefined;
    const score = this.monitor && !pending ? (current as number) : null;
    const topK = pending ? 0 : (this.options.saveTopK ?? 1);
    const name = !epochEnd && !this.options.filename ? `epoch=${trainer.currentEpoch}-step=${trainer.globalStep}` : this.formatName(trainer);
    // A metric value cannot smuggle a path in either ('{val_loss}' filled with '../' is refused).
    const storage = trainer.storage;
    const file = storage.inside(this.dirpath, `${name}.ckpt`, 'ModelCheckpoint.filename');
    // Weights that went NaN/Inf are never written as a checkpoint: last.ckpt and best.ckpt stay the last good ones.
    if (!(await weightsFinite(trainer))) {
      this.skippedNonFinite++;
      console.warn(`warning: ModelCheckpoint: not saving at epoch ${trainer.currentEpoch}, step ${trainer.globalStep}: the model's weights are not finite (NaN or Inf); the last good checkpoint is kept`);
      return;
    }
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
      if (evict && evict.file !== file && this.ownsName(evict.file, storage) && (await storage.exists(evict.file))) await storage.remove(evict.file);
      if (this.bestModelPath === file && (this.options.bestName ?? 'best')) await trainer.saveCheckpoint(storage.join(this.dirpath, `${this.options.bestName ?? 'best'}.ckpt`));
    }
    if (this.options.saveLast) {
      this.lastModelPath = storage.join(this.dirpath, 'last.ckpt');
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

  /**
   * Restores the kept-files list. The list comes from a file, so it is not trusted: only entries
   * naming a `.ckpt` regular file directly inside this callback's directory survive (this callback
   * deletes evicted files, and a crafted list must not make it delete anything else). Files removed
   * since (by hand or by a later run) are forgotten.
   */
  loadStateDict(s: Record<string, unknown>): void {
    const saved = Array.isArray(s.saved) ? (s.saved as unknown[]) : [];
    this.saved = saved.filter((x): x is Saved => {
      if (x === null || typeof x !== 'object') return false;
      const { file, score } = x as Partial<Saved>;
      return typeof file === 'string' && (score === null || typeof score === 'number') && this.ownsName(file, this.storage);
    });
    const best = typeof s.bestModelPath === 'string' && this.ownsName(s.bestModelPath, this.storage) ? s.bestModelPath : '';
    this.bestModelPath = best;
    this.bestModelScore = best && typeof s.bestModelScore === 'number' ? s.bestModelScore : null;
  }

  /**
   * True when `file` names a `.ckpt` file directly inside `dirpath` (no sub-directories, nothing
   * elsewhere): a restored state can never make this callback delete a file it did not write.
   * Whether the file still exists (as a regular file, not a link) is checked before each deletion
   * and at fit start.
   */
  private ownsName(file: string, storage: Storage): boolean {
    return file.endsWith('.ckpt') && !file.includes('\0') && storage.isDirectlyIn(this.dirpath, file);
  }
}

/** One host read of a single flag: are all of the model's parameters finite? */
async function weightsFinite(trainer: Trainer): Promise<boolean> {
  const params = trainer.module?.model.parameters() ?? [];
  if (params.length === 0) return true;
  const flag = tf.tidy(() => tf.all(tf.stack(params.map((p) => tf.all(tf.isFinite(p.variable))))));
  try {
    return (await flag.data())[0] === 1;
  } finally {
    flag.dispose();
  }
}
