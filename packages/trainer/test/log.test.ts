import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, manualSeed } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import type { Batch } from '@kiln/data';
import { DataLoader } from '@kiln/data';
import { Flatten, Linear, Sequential } from '@kiln/layers';
import { SGD } from '@kiln/optim';
import { ClassificationModule, EarlyStopping, ModelCheckpoint, Trainer, type Callback, type Logger, type StepOutput } from '../src/index.js';
import { syntheticDataset } from './helpers.js';

/** Unshuffled loaders whose last batch is short: train 16, 16, 8 examples; validation 8, 8, 4. */
function data(): { train: DataLoader; val: DataLoader } {
  return {
    train: new DataLoader(syntheticDataset(40, 1), { batchSize: 16 }),
    val: new DataLoader(syntheticDataset(20, 2), { batchSize: 8 }),
  };
}

/** Logs the batch index with every option, so each reduction has a closed form. */
class LoggingModule extends ClassificationModule {
  constructor() {
    manualSeed(0);
    const model = new Sequential(new Flatten(), new Linear({ inFeatures: 8, outFeatures: 3 }));
    super(model, { optimizer: (m) => new SGD(m.trainableVariables(), { lr: 0.01 }) });
  }

  override trainingStep(batch: Batch, i = 0): StepOutput {
    const out = super.trainingStep(batch);
    this.log('t_default', i);
    this.log('t_both', tf.scalar(2 * i), { onEpoch: true });
    this.log('t_mean', i, { onStep: false, onEpoch: true });
    this.log('t_sum', i, { onStep: false, onEpoch: true, reduce: 'sum' });
    this.log('t_max', i, { onStep: false, onEpoch: true, reduce: 'max' });
    this.log('t_min', tf.scalar(i + 5), { onStep: false, onEpoch: true, reduce: 'min' });
    this.log('t_unweighted', i, { onStep: false, onEpoch: true, batchSize: 1 });
    this.log('t_bar', i, { progBar: true });
    return out;
  }

  override validationStep(batch: Batch, i = 0): StepOutput {
    const out = super.validationStep(batch);
    this.log('v_mean', i);
    this.log('v_max', i, { reduce: 'max' });
    return out;
  }

  onTrainEpochEnd(): void {
    this.log('late', 40 + (this.trainer?.currentEpoch ?? 0));
  }

  onValidationEpochEnd(): void {
    this.log('v_late', 7);
  }
}

/** Keeps every row it is given. */
function memoryLogger(rows: Array<{ step: number; m: Record<string, number> }>): Logger {
  return { name: 'memory', logMetrics: (m, step) => void rows.push({ step, m: { ...m } }) };
}

describe('TrainingModule.log', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('gives Lightning keys and defaults; epoch means are weighted by batch size', async () => {
    const rows: Array<{ step: number; m: Record<string, number> }> = [];
    const seen: Record<string, Array<number | undefined>> = { plain: [], monitoring: [], valEnd: [] };
    const plain: Callback = { onTrainEpochEnd: (t) => void seen.plain.push(t.callbackMetrics.late) };
    const monitoring: Callback = { monitorsMetrics: true, onTrainEpochEnd: (t) => void seen.monitoring.push(t.callbackMetrics.late) };
    const valEnd: Callback = { onValidationEnd: (t) => void seen.valEnd.push(t.callbackMetrics.v_late) };
    const stepValues: Array<Record<string, number>> = [];
    const probe: Callback = { needsStepMetrics: () => true, onTrainBatchEnd: (t) => void stepValues.push({ ...t.lastTrainMetrics }) };
    const trainer = new Trainer({ maxEpochs: 2, numSanityValSteps: 0, logEveryNSteps: 1 }, [plain, monitoring, valEnd, probe], [memoryLogger(rows)]);
    const module = new LoggingModule();
    const { train, val } = data();
    await trainer.fit(module, train, val);

    // Step values: `name` (onStep only) and `name_step` (both), the returned outputs as `train_*`.
    expect(Object.keys(stepValues[0]).sort()).toEqual(['t_bar', 't_both_step', 't_default', 'train_acc', 'train_loss']);
    expect(stepValues.map((s) => s.t_default)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(stepValues.map((s) => s.t_both_step)).toEqual([0, 2, 4, 0, 2, 4]);
    const stepRows = rows.filter((r) => r.m.epoch === undefined);
    expect(stepRows.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(stepRows[2].m).toMatchObject({ t_default: 2, t_both_step: 4, t_bar: 2 });
    expect(stepRows[2].m.t_mean).toBeUndefined();

    // Epoch values against a hand computation: batch sizes 16, 16, 8 (40 examples) in training,
    // 8, 8, 4 (20 examples) in validation.
    const m = trainer.callbackMetrics;
    expect(m.t_mean).toBeCloseTo((0 * 16 + 1 * 16 + 2 * 8) / 40, 6);
    expect(m.t_both_epoch).toBeCloseTo((0 * 16 + 2 * 16 + 4 * 8) / 40, 6);
    expect(m.t_sum).toBe(0 + 1 + 2);
    expect(m.t_max).toBe(2);
    expect(m.t_min).toBe(5);
    expect(m.t_unweighted).toBeCloseTo(1, 6);
    expect(m.v_mean).toBeCloseTo((0 * 8 + 1 * 8 + 2 * 4) / 20, 6);
    expect(m.v_max).toBe(2);
    expect(m.t_default).toBeUndefined(); // step-only values are not epoch metrics
    expect(m.t_both_step).toBeUndefined();
    expect(m.train_loss).toBeGreaterThan(0);

    // onTrainEpochEnd: a monitoring callback runs after the module and sees what it logged; the others run before.
    expect(seen.plain).toEqual([undefined, 40]);
    expect(seen.monitoring).toEqual([40, 41]);
    expect(seen.valEnd).toEqual([7, 7]);
    const epochRows = rows.filter((r) => r.m.epoch !== undefined);
    // What onTrainEpochEnd logged reaches the loggers in a row of its own, at the epoch's last step.
    const lateRows = epochRows.filter((r) => Object.keys(r.m).sort().join() === 'epoch,late');
    expect(lateRows.map((r) => [r.step, r.m.epoch, r.m.late])).toEqual([[3, 0, 40], [6, 1, 41]]);
    expect(epochRows.find((r) => r.m.t_mean !== undefined)!.m.v_mean).toBeCloseTo(0.8, 6);
    trainer.optimizerConfig!.optimizer.dispose();
  });

  it('EarlyStopping and ModelCheckpoint monitor a value the module logs in onTrainEpochEnd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-log-'));
    try {
      // `late` is 40, 41, 42, …: never lower again, so EarlyStopping(min, patience 0) stops after epoch 1,
      // and ModelCheckpoint(max) finds epoch 1 the better one.
      const ck = new ModelCheckpoint({ dirpath: dir, monitor: 'late', mode: 'max', filename: 'e{epoch}' });
      const es = new EarlyStopping({ monitor: 'late', mode: 'min', patience: 0 });
      const trainer = new Trainer({ maxEpochs: 5, numSanityValSteps: 0 }, [ck, es]);
      await trainer.fit(new LoggingModule(), data().train);
      expect(trainer.currentEpoch).toBe(2);
      expect(es.stoppedEpoch).toBe(1);
      expect(ck.bestModelPath).toBe(join(dir, 'e1.ckpt'));
      trainer.optimizerConfig!.optimizer.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validate and test return logged epoch values beside the returned ones', async () => {
    const trainer = new Trainer({});
    const module = new LoggingModule();
    const v = await trainer.validate(module, data().val);
    expect(Object.keys(v).sort()).toEqual(['v_late', 'v_max', 'v_mean', 'val_acc', 'val_loss']);
    expect(v.v_mean).toBeCloseTo(0.8, 6);
    expect(v.v_late).toBe(7);
  });

  it('rejects a step value where there are no steps, and a log outside any step or hook', async () => {
    class StepInValidation extends LoggingModule {
      override validationStep(batch: Batch, i = 0): StepOutput {
        this.log('bad', 1, { onStep: true });
        return super.validationStep(batch, i);
      }
    }
    await expect(new Trainer({}).validate(new StepInValidation(), data().val)).rejects.toThrow(/log\('bad'\)\.onStep/);
    const module = new LoggingModule();
    expect(() => module.log('x', 1)).toThrow(/no trainer running/);
    module.trainer = new Trainer({});
    expect(() => module.log('x', 1)).toThrow(/outside any step or hook/);
    class InSetup extends LoggingModule {
      setup(): void {
        this.log('x', 1);
      }
    }
    await expect(new Trainer({}).validate(new InSetup(), data().val)).rejects.toThrow(/log\('x'\) was called in setup/);
  });

  it('a mid-epoch checkpoint carries the running reductions: the resumed epoch ends with the same values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-log-'));
    try {
      const full = new Trainer({ maxEpochs: 1, numSanityValSteps: 0 });
      await full.fit(new LoggingModule(), data().train);
      const expected = { ...full.callbackMetrics };
      full.optimizerConfig!.optimizer.dispose();

      const first = new Trainer({ maxEpochs: 1, maxSteps: 2, numSanityValSteps: 0 }, [new ModelCheckpoint({ dirpath: dir, everyNSteps: 2, filename: 'mid' })]);
      await first.fit(new LoggingModule(), data().train);
      first.optimizerConfig!.optimizer.dispose();
      const resumed = new Trainer({ maxEpochs: 1, numSanityValSteps: 0 });
      await resumed.fit(new LoggingModule(), data().train, undefined, join(dir, 'mid.ckpt'));
      for (const k of ['t_mean', 't_sum', 't_max', 't_min', 't_unweighted', 't_both_epoch', 'train_loss', 'train_acc']) expect(resumed.callbackMetrics[k], k).toBeCloseTo(expected[k], 5);
      resumed.optimizerConfig!.optimizer.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('logged values stay on the device', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Host reads (asynchronous and synchronous) made by a fit of `batches` steps. */
  async function readsOf(batches: number, options: { logEvery?: number; loggers?: boolean; callbacks?: Callback[] } = {}): Promise<number> {
    // Every host read of a tensor goes through one of these two (the backend's own read may call
    // both, so it is counted here, once per read the trainer or a callback makes).
    const read = vi.spyOn(tf.Tensor.prototype, 'data');
    const readSync = vi.spyOn(tf.Tensor.prototype, 'dataSync');
    const loggers = options.loggers ? [memoryLogger([])] : [];
    const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0, logEveryNSteps: options.logEvery ?? 50 }, options.callbacks ?? [], loggers);
    await trainer.fit(new LoggingModule(), new DataLoader(syntheticDataset(8 * batches, 1), { batchSize: 8 }));
    trainer.optimizerConfig!.optimizer.dispose();
    const n = read.mock.calls.length + readSync.mock.calls.length;
    read.mockRestore();
    readSync.mockRestore();
    return n;
  }

  it('no host read per step unless a logger or callback consumes the step values', async () => {
    // The difference between 8 and 4 steps is the cost of 4 steps; the epoch's reads cancel out.
    const perStep = async (o: Parameters<typeof readsOf>[1]) => ((await readsOf(8, o)) - (await readsOf(4, o))) / 4;
    expect(await perStep({})).toBe(0);
    expect(await perStep({ loggers: true, logEvery: 50 })).toBe(0);
    // A logger that logs every step (what every run paid before: one read per logged value per step) reads once per step.
    expect(await perStep({ loggers: true, logEvery: 1 })).toBe(1);
    expect(await perStep({ loggers: true, logEvery: 2 })).toBe(0.5);
    // A callback that asks for the step values gets one read per step it asks in.
    const asksOddSteps: Callback = { needsStepMetrics: (_t, i) => i % 2 === 1, onTrainBatchEnd: (t, _m, _o, _b, i) => void (i % 2 === 1 && t.lastTrainMetrics.train_loss) };
    expect(await perStep({ callbacks: [asksOddSteps] })).toBe(0.5);
    // A callback that reads without asking still gets values (a synchronous read), and only then.
    const reader: Callback = { onTrainBatchEnd: (t) => void t.lastTrainMetrics.t_default };
    expect(await perStep({ callbacks: [reader] })).toBe(1);
  });

  it('leaks no tensors over epochs', async () => {
    const counts: number[] = [];
    const cb: Callback = { onTrainEpochStart: () => void counts.push(tf.memory().numTensors) };
    const module = new LoggingModule();
    const before = tf.memory().numTensors;
    const trainer = new Trainer({ maxEpochs: 4, numSanityValSteps: 1, logEveryNSteps: 1 }, [cb], [memoryLogger([])]);
    const { train, val } = data();
    await trainer.fit(module, train, val);
    // From the second epoch on (the optimizer's slots exist by then) the count stays flat.
    expect(counts.slice(1)).toEqual([counts[1], counts[1], counts[1]]);
    trainer.optimizerConfig!.optimizer.dispose();
    // Everything the run logged was freed with it.
    expect(tf.memory().numTensors).toBe(before);
  });
});
