import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, KilnError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { EarlyStopping, Trainer, type TrainingModule } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';

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

  it('checkFinite: false lets a NaN epoch count as one without improvement', () => {
    const es = new EarlyStopping({ patience: 2, checkFinite: false });
    expect(es.evaluate(NaN, 0, 1)).toEqual({ shouldStop: false, improved: false });
    expect(drive(es, [1, NaN, 0.5, NaN, NaN])).toBe(4);
  });

  it('divergenceThreshold: stops at once when the metric is worse than it (pure decision)', () => {
    const min = new EarlyStopping({ patience: 100, divergenceThreshold: 10 });
    expect(min.evaluate(10.5, 0, 11)).toMatchObject({ shouldStop: true, improved: false, reason: expect.stringMatching(/diverged/) });
    expect(min.evaluate(10, 0, 11)).toEqual({ shouldStop: false, improved: true }); // equal is not worse
    expect(min.evaluate(9, 0, 1)).toEqual({ shouldStop: false, improved: false });
    const max = new EarlyStopping({ monitor: 'val_acc', patience: 100, divergenceThreshold: 0.2 });
    expect(max.evaluate(0.1, 0, 0)).toMatchObject({ shouldStop: true, improved: false });
    expect(max.evaluate(0.3, 0, 0)).toEqual({ shouldStop: false, improved: true });
    // Patience does not matter: the first diverged epoch stops.
    expect(drive(new EarlyStopping({ patience: 100, divergenceThreshold: 5 }), [1, 0.5, 7, 0.1])).toBe(2);
    expect(() => new EarlyStopping({ divergenceThreshold: NaN })).toThrow(ConfigError);
  });

  describe('in a real fit', () => {
    beforeAll(async () => {
      await wasmBackend().init();
    });

    async function fit(es: EarlyStopping) {
      const module = tinyModule(0);
      const { train, val } = loaders(64, 32, 16);
      const trainer = new Trainer({ maxEpochs: 4, seed: 5, numSanityValSteps: 0 }, [es]);
      await trainer.fit(module, train, val);
      trainer.optimizerConfig!.optimizer.dispose();
      module.model.dispose();
      return trainer;
    }

    it('divergenceThreshold ends fit after the first epoch worse than it', async () => {
      // A 3-class problem starts near ln 3 ≈ 1.1: a threshold of 0.01 is crossed at once…
      const es = new EarlyStopping({ monitor: 'val_loss', patience: 100, divergenceThreshold: 0.01 });
      const t = await fit(es);
      expect(es.stoppedEpoch).toBe(0);
      expect(es.stoppedReason).toMatch(/divergence threshold 0.01/);
      expect(t.currentEpoch).toBe(1);
      // …a threshold of 100 never is, and all epochs run.
      const calm = new EarlyStopping({ monitor: 'val_loss', patience: 100, divergenceThreshold: 100 });
      expect((await fit(calm)).currentEpoch).toBe(4);
      expect(calm.stoppedEpoch).toBe(-1);
    });
  });
});
