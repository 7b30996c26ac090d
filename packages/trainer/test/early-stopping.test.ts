import { describe, expect, it } from 'vitest';
import { ConfigError, KilnError } from '@kiln/core';
import { EarlyStopping, type Trainer, type TrainingModule } from '../src/index.js';

/** Feeds a sequence of epoch metrics through the hook; returns the epoch at which it stopped (or -1). */
function drive(es: EarlyStopping, values: number[], key = 'val_loss'): number {
  const trainer = { callbackMetrics: {} as Record<string, number>, currentEpoch: 0, globalStep: 0, shouldStop: false } as unknown as Trainer;
  es.onTrainStart(trainer);
  for (let e = 0; e < values.length; e++) {
    trainer.currentEpoch = e;
    trainer.callbackMetrics = { [key]: values[e], epoch: e };
    es.onTrainEpochEnd(trainer, {} as TrainingModule);
    if (trainer.shouldStop) return e;
  }
  return -1;
}

describe('EarlyStopping', () => {
  it('stops after `patience` epochs without improvement (min mode)', () => {
    expect(drive(new EarlyStopping({ patience: 2 }), [1.0, 0.9, 0.95, 0.93, 0.5])).toBe(3);
    expect(drive(new EarlyStopping({ patience: 3 }), [1.0, 0.9, 0.95, 0.93, 0.5])).toBe(-1);
  });

  it('max mode is inferred for accuracy and minDelta demands a real gain', () => {
    const es = new EarlyStopping({ monitor: 'val_acc', patience: 1, minDelta: 0.05 });
    expect(es.monitor.mode).toBe('max');
    expect(drive(es, [0.5, 0.52, 0.6], 'val_acc')).toBe(1);
  });

  it('baseline: stops when the first epochs do not beat it', () => {
    expect(drive(new EarlyStopping({ patience: 2, baseline: 0.5 }), [0.8, 0.7, 0.6])).toBe(1);
    expect(drive(new EarlyStopping({ patience: 2, baseline: 0.5 }), [0.4, 0.3, 0.2])).toBe(-1);
  });

  it('startFromEpoch ignores warm-up epochs', () => {
    expect(drive(new EarlyStopping({ patience: 1, startFromEpoch: 3 }), [1, 2, 3, 4, 5])).toBe(4);
  });

  it('stops on a non-finite value and says why', () => {
    const es = new EarlyStopping({ patience: 10 });
    expect(drive(es, [1, NaN])).toBe(1);
    expect(es.stoppedReason).toMatch(/not finite/);
  });

  it('the decision is a pure function', () => {
    const es = new EarlyStopping({ patience: 2 });
    expect(es.evaluate(0.5, 0, 1)).toEqual({ shouldStop: false, improved: true });
    expect(es.evaluate(2, 1, 1)).toMatchObject({ shouldStop: true, improved: false });
  });

  it('state round-trips through stateDict (Infinity stored as null)', () => {
    const es = new EarlyStopping({ patience: 5 });
    drive(es, [1, 2, 3]);
    const s = JSON.parse(JSON.stringify(es.stateDict()));
    const es2 = new EarlyStopping({ patience: 5 });
    es2.loadStateDict(s);
    expect(es2.bestScore).toBe(1);
    expect(new EarlyStopping().stateDict().best).toBeNull();
  });

  it('a missing metric names the ones that exist; bad options are ConfigErrors', () => {
    const es = new EarlyStopping({ monitor: 'val_loss' });
    const trainer = { callbackMetrics: { train_loss: 1, epoch: 0 }, currentEpoch: 0, globalStep: 0 } as unknown as Trainer;
    expect(() => es.onTrainEpochEnd(trainer, {} as TrainingModule)).toThrow(KilnError);
    expect(() => es.onTrainEpochEnd(trainer, {} as TrainingModule)).toThrow(/train_loss/);
    expect(() => new EarlyStopping({ patience: -1 })).toThrow(ConfigError);
    expect(() => new EarlyStopping({ mode: 'up' as 'min' })).toThrow(ConfigError);
  });
});
