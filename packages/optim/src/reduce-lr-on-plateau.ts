import { ConfigError, KilnError } from '@kiln/core';
import type { Optimizer } from './optimizer.js';

/** Options of {@link ReduceLROnPlateau}; each field's default is PyTorch's. */
export interface ReduceLrOnPlateauOptions {
  /** Metric read from the record passed to `step(metrics)` (e.g. `val_loss`). Default `val_loss`. */
  monitor?: string;
  /** 'min' when lower is better (losses), 'max' when higher is (accuracy). Default 'min'. */
  mode?: 'min' | 'max';
  /** Multiplier applied to the rate on a plateau, in [0, 1). Default 0.1. */
  factor?: number;
  /** Epochs without improvement tolerated before reducing. Default 10. */
  patience?: number;
  /** Least change that counts as an improvement. Default 1e-4. */
  threshold?: number;
  /** 'rel': improvement beyond best·(1 ∓ threshold); 'abs': beyond best ∓ threshold. Default 'rel'. */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs to wait after a reduction before counting bad epochs again. Default 0. */
  cooldown?: number;
  /** Lowest rate, for all groups or one per group. Default 0. */
  minLr?: number | number[];
  /** Reductions smaller than this are skipped. Default 1e-8. */
  eps?: number;
}

/** Plateau-tracking state saved in checkpoints. */
export interface ReduceLrOnPlateauState {
  [key: string]: unknown;
  /** Best value seen; null before the first (JSON has no infinities). */
  best: number | null;
  /** Consecutive epochs without improvement. */
  numBadEpochs: number;
  /** Epochs of cooldown left. */
  cooldownCounter: number;
  /** Epochs seen by `step`. */
  lastEpoch: number;
}

/**
 * Reduces every group's rate by `factor` when the monitored metric has not improved for more than
 * `patience` epochs (PyTorch's `ReduceLROnPlateau`), then waits `cooldown` epochs.
 */
export class ReduceLROnPlateau {
  /** The metric watched (see {@link ReduceLrOnPlateauOptions}). */
  readonly monitor: string;
  /** Whether lower (`min`) or higher (`max`) is better. */
  readonly mode: 'min' | 'max';
  /** Multiplier applied to the rate on a plateau. */
  readonly factor: number;
  /** Epochs without improvement tolerated before reducing. */
  readonly patience: number;
  /** Least change that counts as an improvement. */
  readonly threshold: number;
  /** Whether `threshold` is relative or absolute. */
  readonly thresholdMode: 'rel' | 'abs';
  /** Epochs to wait after a reduction. */
  readonly cooldown: number;
  /** Lowest rate of each parameter group. */
  readonly minLrs: number[];
  /** Reductions smaller than this are skipped. */
  readonly eps: number;
  private best: number;
  private numBadEpochs = 0;
  private cooldownCounter = 0;
  private lastEpoch = 0;

  constructor(
    /** The optimizer whose groups' rates are reduced. */
    readonly optimizer: Optimizer,
    options: ReduceLrOnPlateauOptions = {},
  ) {
    const { monitor = 'val_loss', mode = 'min', factor = 0.1, patience = 10, threshold = 1e-4, thresholdMode = 'rel', cooldown = 0, minLr = 0, eps = 1e-8 } = options;
    const n = optimizer.paramGroups.length;
    ReduceLROnPlateau.validate(options, n);
    const minLrs = Array.isArray(minLr) ? minLr : new Array<number>(n).fill(minLr);
    this.monitor = monitor;
    this.mode = mode;
    this.factor = factor;
    this.patience = patience;
    this.threshold = threshold;
    this.thresholdMode = thresholdMode;
    this.cooldown = cooldown;
    this.minLrs = minLrs;
    this.eps = eps;
    this.best = this.worst();
  }

  /**
   * Throws a ConfigError naming the first option out of range. With `groups`, a per-group `minLr`
   * must have one entry per parameter group.
   */
  static validate(options: ReduceLrOnPlateauOptions, groups?: number): void {
    const { mode = 'min', factor = 0.1, patience = 10, threshold = 1e-4, thresholdMode = 'rel', cooldown = 0, minLr = 0, eps = 1e-8 } = options;
    if (mode !== 'min' && mode !== 'max') throw new ConfigError('ReduceLROnPlateau.mode', "'min' or 'max'", mode);
    if (!(factor >= 0 && factor < 1)) throw new ConfigError('ReduceLROnPlateau.factor', 'a number in [0, 1)', factor);
    if (!(Number.isInteger(patience) && patience >= 0)) throw new ConfigError('ReduceLROnPlateau.patience', 'an integer >= 0', patience);
    if (!(threshold >= 0)) throw new ConfigError('ReduceLROnPlateau.threshold', 'a number >= 0', threshold);
    if (thresholdMode !== 'rel' && thresholdMode !== 'abs') throw new ConfigError('ReduceLROnPlateau.thresholdMode', "'rel' or 'abs'", thresholdMode);
    if (!(Number.isInteger(cooldown) && cooldown >= 0)) throw new ConfigError('ReduceLROnPlateau.cooldown', 'an integer >= 0', cooldown);
    const minLrs = Array.isArray(minLr) ? minLr : [minLr];
    const countOk = !Array.isArray(minLr) || groups === undefined || minLr.length === groups;
    if (!countOk || !minLrs.every((m) => m >= 0)) {
      throw new ConfigError('ReduceLROnPlateau.minLr', groups === undefined ? 'a number >= 0, or one per parameter group' : `a number >= 0 or ${groups} of them (one per parameter group)`, minLr);
    }
    if (!(eps >= 0)) throw new ConfigError('ReduceLROnPlateau.eps', 'a number >= 0', eps);
  }

  /** Takes the epoch's metrics (the record the trainer passes, or the value itself). */
  step(metrics?: Record<string, number> | number): void {
    const current = typeof metrics === 'number' ? metrics : metrics?.[this.monitor];
    if (typeof current !== 'number' || Number.isNaN(current)) {
      const known = metrics && typeof metrics === 'object' ? Object.keys(metrics).join(', ') || 'none' : 'none';
      throw new KilnError('E_METRIC_MISSING', `ReduceLROnPlateau monitors '${this.monitor}', which was not reported`, {
        found: known,
        hint: `set monitor to one of the logged metrics (${known}), and step the scheduler after validation`,
      });
    }
    this.lastEpoch++;
    if (this.isBetter(current)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      this.reduce();
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
  }

  /** Whether `a` improves on the best value seen, by more than the threshold. */
  isBetter(a: number): boolean {
    const { best, threshold: th } = this;
    if (this.mode === 'min') return this.thresholdMode === 'rel' ? a < best * (1 - th) : a < best - th;
    return this.thresholdMode === 'rel' ? a > best * (1 + th) : a > best + th;
  }

  /** Each group's current learning rate. */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.hyper.lr);
  }

  /** The plateau-tracking state, for checkpoints. */
  stateDict(): ReduceLrOnPlateauState {
    return { best: Number.isFinite(this.best) ? this.best : null, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter, lastEpoch: this.lastEpoch };
  }

  /** Takes back what `stateDict` returned. */
  loadStateDict(state: Record<string, unknown>): void {
    const s = state as Partial<ReduceLrOnPlateauState>;
    for (const k of ['numBadEpochs', 'cooldownCounter', 'lastEpoch'] as const) {
      if (!(Number.isInteger(s[k]) && (s[k] as number) >= 0)) throw new ConfigError(`ReduceLROnPlateau.loadStateDict(state).${k}`, 'an integer >= 0', s[k]);
    }
    this.best = typeof s.best === 'number' ? s.best : this.worst();
    this.numBadEpochs = s.numBadEpochs!;
    this.cooldownCounter = s.cooldownCounter!;
    this.lastEpoch = s.lastEpoch!;
  }

  private worst(): number {
    return this.mode === 'min' ? Infinity : -Infinity;
  }

  private reduce(): void {
    this.optimizer.paramGroups.forEach((g, i) => {
      const old = g.hyper.lr;
      const next = Math.max(old * this.factor, this.minLrs[i]);
      if (old - next > this.eps) g.hyper.lr = next;
    });
  }
}
