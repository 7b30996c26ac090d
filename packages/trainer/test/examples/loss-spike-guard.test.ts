import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { wasmBackend } from '@kiln/backend-cpu';
import { ModelCheckpoint, callback, callbackClass, createTrainer, provide, readCheckpoint, type Trainer } from '../../src/index.js';
import { loaders, tinyModule } from '../helpers.js';
import { LOSS_SPIKE_OPTIONS, LossSpikeGuard } from './loss-spike-guard.js';

function guardOf(trainer: Trainer): LossSpikeGuard {
  return trainer.callbacks.callbacks.find((c) => c instanceof LossSpikeGuard) as LossSpikeGuard;
}

describe('custom callback example (docs/custom-callbacks.md)', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('is constructed by the run container with injected options, one instance per run', async () => {
    const plugins = [provide(LOSS_SPIKE_OPTIONS, { factor: 2, maxSpikes: 1 }), callbackClass(LossSpikeGuard)];
    const a = createTrainer({ maxEpochs: 1, plugins });
    const b = createTrainer({ maxEpochs: 1, plugins });
    expect(guardOf(a).factor).toBe(2);
    expect(guardOf(a)).not.toBe(guardOf(b));
  });

  it('counts spikes, stops training after too many', () => {
    const g = new LossSpikeGuard({ factor: 2, maxSpikes: 1 });
    const t = { globalStep: 0, lastTrainMetrics: {} as Record<string, number>, shouldStop: false } as unknown as Trainer;
    g.onTrainStart(t);
    for (const [i, loss] of [1, 1, 5, 1, 9].entries()) {
      t.globalStep = i + 1;
      t.lastTrainMetrics = { train_loss: loss };
      g.onTrainBatchEnd(t, {} as never);
    }
    expect(g.spikes).toEqual([3, 5]);
    expect(t.shouldStop).toBe(true);
  });

  it('its state survives a resume', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-example-'));
    const { train, val } = loaders(64, 32, 16);
    const first = createTrainer({ maxEpochs: 2, numSanityValSteps: 0, plugins: [provide(LOSS_SPIKE_OPTIONS, {}), callbackClass(LossSpikeGuard), callback(new ModelCheckpoint({ dirpath: dir, saveLast: true, saveTopK: 0 }))] });
    await first.fit(tinyModule(), train, val);
    first.optimizerConfig!.optimizer.dispose();
    const saved = guardOf(first).ema;
    const ck = readCheckpoint(path.join(dir, 'last.ckpt'));
    expect(ck.meta.callbacks.LossSpikeGuard).toEqual({ ema: saved, spikes: guardOf(first).spikes });

    const second = createTrainer({ maxEpochs: 2, numSanityValSteps: 0, plugins: [provide(LOSS_SPIKE_OPTIONS, {}), callbackClass(LossSpikeGuard)] });
    // maxEpochs 2 is already reached: resuming only restores state.
    await second.fit(tinyModule(), loaders(64, 32, 16).train, undefined, path.join(dir, 'last.ckpt'));
    second.optimizerConfig!.optimizer.dispose();
    expect(guardOf(second).ema).toBe(saved);
  });
});
