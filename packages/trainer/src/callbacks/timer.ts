import { ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of {@link Timer}. */
export interface TimerOptions {
  /** Longest training time: seconds, or `{ days, hours, minutes, seconds }`. */
  duration:
    | number
    | {
        /** Days. */
        days?: number;
        /** Hours. */
        hours?: number;
        /** Minutes. */
        minutes?: number;
        /** Seconds. */
        seconds?: number;
      };
  /** Check after every step (default) or only at epoch ends. */
  interval?: 'step' | 'epoch';
  /** Clock in milliseconds (tests pass a fake one). */
  now?: () => number;
}

/**
 * Stops `fit` once the training time passes `duration`. Time already spent is saved in
 * checkpoints, so a resumed run gets only what is left.
 */
export class Timer implements Callback {
  readonly stateKey = 'Timer';
  /** The limit in milliseconds. */
  readonly durationMs: number;
  private startedAt: number | null = null;
  private offsetMs = 0;
  private readonly now: () => number;

  constructor(private readonly options: TimerOptions) {
    const d = options?.duration;
    const s = typeof d === 'number' ? d : d ? (d.days ?? 0) * 86400 + (d.hours ?? 0) * 3600 + (d.minutes ?? 0) * 60 + (d.seconds ?? 0) : NaN;
    if (!(s > 0)) throw new ConfigError('Timer.duration', 'a positive number of seconds or { days, hours, minutes, seconds }', d);
    this.durationMs = s * 1000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Milliseconds of training so far, including time before a resume. */
  elapsedMs(): number {
    return this.offsetMs + (this.startedAt === null ? 0 : this.now() - this.startedAt);
  }

  /** A new `fit` starts from zero; a resumed one gets its elapsed time back from the checkpoint afterwards. */
  setup(_t: Trainer, _m: unknown, stage: string): void {
    if (stage !== 'fit') return;
    this.offsetMs = 0;
    this.startedAt = null;
  }

  onTrainStart(): void {
    this.startedAt = this.now();
  }

  onTrainEnd(): void {
    this.offsetMs = this.elapsedMs();
    this.startedAt = null;
  }

  private check(trainer: Trainer): void {
    if (this.elapsedMs() >= this.durationMs) trainer.shouldStop = true;
  }

  onTrainBatchEnd(trainer: Trainer): void {
    if ((this.options.interval ?? 'step') === 'step') this.check(trainer);
  }

  onTrainEpochEnd(trainer: Trainer): void {
    this.check(trainer);
  }

  stateDict(): Record<string, unknown> {
    return { elapsedMs: this.elapsedMs() };
  }

  loadStateDict(s: Record<string, unknown>): void {
    this.offsetMs = Number(s.elapsedMs ?? 0);
  }
}
