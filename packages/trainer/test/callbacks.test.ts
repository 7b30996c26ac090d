import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, TensorLeakError } from '@kiln/core';
import type { Batch } from '@kiln/data';
import { wasmBackend } from '@kiln/backend-cpu';
import {
  EarlyStopping, LearningRateMonitor, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, TensorLeakCheck,
  TerminateOnNaN, Timer, Trainer, type Callback, type Logger,
} from '../src/index.js';
import { loaders, maxAbsDiff, tinyModule, weights } from './helpers.js';

async function fit(options: ConstructorParameters<typeof Trainer>[0], callbacks: Callback[], loggers: Logger[] = [], module = tinyModule()) {
  const trainer = new Trainer({ numSanityValSteps: 0, ...options }, callbacks, loggers);
  const { train, val } = loaders(64, 32, 16);
  await trainer.fit(module, train, val);
  trainer.optimizerConfig!.optimizer.dispose();
  return { trainer, module };
}

describe('built-in callbacks in a real fit', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('EarlyStopping ends fit early and restores the best weights', async () => {
    // A large learning rate makes val_loss bounce, so the best epoch is not the last.
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 1, restoreBestWeights: true });
    const seen: Record<string, Float32Array>[] = [];
    const losses: number[] = [];
    const spy: Callback = { onTrainEpochEnd: (t, m) => void (seen.push(weights(m as never)), losses.push(t.callbackMetrics.val_loss)) };
    const { trainer, module } = await fit({ maxEpochs: 30 }, [spy, es], [], tinyModule(0, 0.5));
    expect(trainer.currentEpoch).toBeLessThan(30);
    expect(es.stoppedEpoch).toBe(trainer.currentEpoch - 1);
    const best = losses.indexOf(Math.min(...losses));
    expect(maxAbsDiff(weights(module), seen[best])).toBe(0);
  });

  it('minEpochs overrides an early stop', async () => {
    const stopper: Callback = { onTrainEpochEnd: (t) => void (t.shouldStop = true) };
    const { trainer } = await fit({ maxEpochs: 10, minEpochs: 3 }, [stopper]);
    expect(trainer.currentEpoch).toBe(3);
  });

  it('ModelCheckpoint keeps the top-k by the monitored metric and formats names with metrics', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-mc-'));
    const vals: number[] = [];
    const rec: Callback = { onTrainEpochEnd: (t) => void vals.push(t.callbackMetrics.val_acc) };
    const mc = new ModelCheckpoint({ dirpath: dir, monitor: 'val_acc', saveTopK: 2, filename: '{epoch}-{val_acc:.3f}' });
    await fit({ maxEpochs: 4 }, [rec, mc]);
    const kept = readdirSync(dir).filter((f) => f !== 'best.ckpt').sort();
    expect(kept).toHaveLength(2);
    const order = vals.map((v, e) => ({ v, e })).sort((a, b) => b.v - a.v || a.e - b.e);
    const expected = order.slice(0, 2).map(({ v, e }) => `${e}-${v.toFixed(3)}.ckpt`).sort();
    // Ties keep the earlier file (a later one must beat it strictly).
    if (order[1].v !== order[2]?.v) expect(kept).toEqual(expected);
    expect(mc.bestModelScore).toBe(Math.max(...vals));
    expect(readdirSync(dir)).toContain('best.ckpt');
  });

  it('ModelCheckpoint everyNSteps saves mid-epoch', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-mc-'));
    await fit({ maxEpochs: 2 }, [new ModelCheckpoint({ dirpath: dir, everyNSteps: 3, saveTopK: -1 })]);
    expect(readdirSync(dir).sort()).toEqual(['epoch=0-step=3.ckpt', 'epoch=1-step=6.ckpt']);
  });

  it('LearningRateScheduler (function) sets the rate each epoch; LearningRateMonitor logs it', async () => {
    const logged: Record<string, number>[] = [];
    const log: Logger = { name: 'mem', logMetrics: (m) => void logged.push(m) };
    const mon = new LearningRateMonitor();
    await fit({ maxEpochs: 3 }, [new LearningRateScheduler({ schedule: (e) => 0.1 * 0.5 ** e }), mon], [log]);
    expect(mon.history.map((h) => h.lrs['lr-0'] ?? Object.values(h.lrs)[0])).toEqual([0.1, 0.05, 0.025]);
    expect(logged.some((m) => Object.keys(m).some((k) => k.startsWith('lr-')))).toBe(true);
  });

  it('LearningRateScheduler drives a schedule object and checkpoints its state', async () => {
    let steps = 0;
    const schedule = { step: () => void steps++, stateDict: () => ({ steps }), loadStateDict: (s: Record<string, unknown>) => void (steps = Number(s.steps)) };
    const cb = new LearningRateScheduler({ schedule, interval: 'step' });
    await fit({ maxEpochs: 1 }, [cb]);
    expect(steps).toBe(4);
    expect(cb.stateDict()).toEqual({ schedule: { steps: 4 } });
  });

  it('ReduceLROnPlateau cuts the rate after `patience` flat epochs', async () => {
    const flat: Callback = { onTrainEpochEnd: (t) => void (t.callbackMetrics.val_loss = 1) };
    const { trainer } = await fit({ maxEpochs: 4 }, [flat, new ReduceLROnPlateau({ patience: 1, factor: 0.5 })]);
    // epoch 0 sets the best, epochs 1-2 are flat (wait 1, 2 > patience → cut), epoch 3 waits again.
    expect(trainer.optimizerConfig!.optimizer.getLr()).toBeCloseTo(0.005, 10);
  });

  it('ReduceLROnPlateau counts cooldown as PyTorch does, and resumes from its state', async () => {
    const values = [1, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85];
    let epoch = 0;
    const feed: Callback = { onTrainEpochEnd: (t) => void (t.callbackMetrics.val_loss = values[epoch++]) };
    const cb = new ReduceLROnPlateau({ patience: 1, factor: 0.5, cooldown: 1 });
    const { trainer } = await fit({ maxEpochs: 6 }, [feed, cb]);
    // Epoch 3 is the second bad epoch after the best (0.9): cut to 0.005; epoch 4 is cooldown.
    expect(trainer.optimizerConfig!.optimizer.getLr()).toBeCloseTo(0.005, 10);
    expect(cb.stateDict()).toEqual({ best: 0.9, numBadEpochs: 1, cooldownCounter: 0, lastEpoch: 6 });
    // A fresh callback restored from that state (before it has seen an optimizer) carries on:
    // 0.8 improves, then two bad epochs cut again.
    const resumed = new ReduceLROnPlateau({ patience: 1, factor: 0.5, cooldown: 1 });
    resumed.loadStateDict(cb.stateDict());
    const { trainer: t2 } = await fit({ maxEpochs: 4 }, [feed, resumed]);
    expect(t2.optimizerConfig!.optimizer.getLr()).toBeCloseTo(0.005, 10);
    expect(resumed.stateDict()).toMatchObject({ best: 0.8, lastEpoch: 10, cooldownCounter: 0 });
    expect(() => new ReduceLROnPlateau({ factor: 1.5 })).toThrow(/ReduceLROnPlateau\.factor/);
  });

  it('TerminateOnNaN stops at the first non-finite loss', async () => {
    const module = tinyModule();
    const step = module.trainingStep.bind(module);
    let calls = 0;
    module.trainingStep = (b: Batch) => {
      const o = step(b);
      if (calls++ === 2) {
        o.logs.loss = tf.mul(o.loss!, NaN) as tf.Scalar;
        o.loss = o.logs.loss;
      }
      return o;
    };
    const t = new TerminateOnNaN();
    const { trainer } = await fit({ maxEpochs: 5 }, [t], [], module);
    expect(t.stoppedAtStep).toBe(3);
    expect(trainer.globalStep).toBe(3);
  });

  it('TensorLeakCheck passes a clean loop and fails fast on a leak', async () => {
    await fit({ maxEpochs: 1 }, [new TensorLeakCheck()]);
    const leaky: Callback = { onTrainBatchEnd: () => void tf.keep(tf.scalar(1)) };
    await expect(fit({ maxEpochs: 1 }, [leaky, new TensorLeakCheck()])).rejects.toThrow(TensorLeakError);
  });

  it('Timer stops when the duration is spent and carries elapsed time across resume', async () => {
    let now = 0;
    const clock: Callback = { onTrainBatchEnd: () => void (now += 1000) };
    const timer = new Timer({ duration: { seconds: 5 }, now: () => now });
    const { trainer } = await fit({ maxEpochs: 10 }, [clock, timer]);
    expect(trainer.globalStep).toBe(5);
    const t2 = new Timer({ duration: 10, now: () => now });
    t2.loadStateDict(timer.stateDict());
    expect(t2.elapsedMs()).toBe(5000);
  });

  it('fastDevRun runs one batch of training and validation, and writes no logs or checkpoints', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-fastdev-'));
    const seen: string[] = [];
    const rec: Callback = {
      onTrainBatchEnd: () => void seen.push('train'),
      onValidationBatchEnd: () => void seen.push('val'),
    };
    const logged: string[] = [];
    const logger: Logger = { name: 'spy', logMetrics: () => void logged.push('metrics'), logHyperparams: () => void logged.push('hparams') };
    const { trainer } = await fit({ fastDevRun: true, maxEpochs: 5 }, [rec, new ModelCheckpoint({ dirpath: dir, saveLast: true })], [logger]);
    expect(seen).toEqual(['train', 'val']);
    expect(trainer.globalStep).toBe(1);
    expect(logged).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('valCheckInterval validates within the epoch; overfitBatches reuses the same batches', async () => {
    let vals = 0;
    const counter: Callback = { onValidationEnd: () => void vals++ };
    await fit({ maxEpochs: 2, valCheckInterval: 0.5 }, [counter]);
    expect(vals).toBe(4);
    const seen: number[][] = [];
    const rec: Callback = { onTrainBatchStart: (_t, _m, b) => void seen.push(Array.from(b.indices)) };
    const { trainer } = await fit({ maxEpochs: 2, overfitBatches: 2 }, [rec]);
    expect(trainer.globalStep).toBe(4);
    expect(seen[2]).toEqual(seen[0]);
    expect(seen[0]).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });
});
