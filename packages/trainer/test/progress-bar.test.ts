import { beforeAll, describe, expect, it } from 'vitest';
import { wasmBackend } from '@kiln/backend-cpu';
import { ProgressBar, Trainer } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';

async function draw(isTTY: boolean): Promise<string> {
  let text = '';
  const stream = { isTTY, columns: 100, write: (s: string) => void (text += s) };
  const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 0 }, [new ProgressBar({ stream, refreshEvery: 2 })]);
  const { train, val } = loaders(64, 32, 16);
  await trainer.fit(tinyModule(), train, val);
  trainer.optimizerConfig!.optimizer.dispose();
  return text;
}

describe('ProgressBar', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('prints plain lines every refreshEvery steps when not a terminal, with steps, rate, ETA and loss', async () => {
    const lines = (await draw(false)).trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^epoch 1 \[#{10}\.{10}\] 2\/4 [\d.]+ it\/s eta \d+s loss \d\.\d{4}$/);
    expect(lines[2]).toMatch(/^epoch 1: train_loss [\d.]+, train_acc [\d.]+, val_loss [\d.]+, val_acc [\d.]+ \(\d+ samples\/s\)$/);
    expect(lines.join('\n')).not.toContain('\r');
  });

  it('redraws one line on a terminal', async () => {
    const text = await draw(true);
    expect(text.split('\r').length - 1).toBe(5); // 4 batches redrawn, then the epoch line
    expect(text.trim().split('\n')).toHaveLength(1);
  });
});
