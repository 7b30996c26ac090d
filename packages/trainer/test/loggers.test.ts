import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { wasmBackend } from '@kiln/backend-cpu';
import { CsvLogger, JsonlLogger, Trainer, learningCurvesSvg } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';

describe('loggers', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('CSV and JSON lines receive hparams once and one row per epoch; the learning curves are drawn at the end', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-log-'));
    const trainer = new Trainer({ maxEpochs: 3, numSanityValSteps: 0, logEveryNSteps: 1000 }, [], [new CsvLogger({ dir }), new JsonlLogger({ dir })]);
    const { train, val } = loaders(64, 32, 16);
    await trainer.fit(tinyModule(), train, val);
    trainer.optimizerConfig!.optimizer.dispose();
    const csv = readFileSync(path.join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(4);
    const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'hparams')).toHaveLength(1);
    expect(lines.filter((l) => l.type === 'metrics' && l.epoch !== undefined).map((l) => l.epoch)).toEqual([0, 1, 2]);
    expect(lines[lines.length - 1]).toEqual({ type: 'end', status: 'success' });
    const svg = path.join(dir, 'learning-curves.svg');
    expect(existsSync(svg)).toBe(true);
    const text = readFileSync(svg, 'utf8');
    for (const s of ['train_loss', 'val_loss', 'train_acc', 'val_acc']) expect(text).toContain(`<title>${s}</title>`);
  });

  it('the SVG puts each epoch at its value (higher loss → higher on the page → smaller y)', () => {
    const svg = learningCurvesSvg([
      { epoch: 0, train_loss: 2 },
      { epoch: 1, train_loss: 1 },
    ]);
    const d = /<path d="M([\d.]+),([\d.]+) L([\d.]+),([\d.]+)"/.exec(svg)!;
    const [x0, y0, x1, y1] = d.slice(1).map(Number);
    expect(x1).toBeGreaterThan(x0);
    expect(y0).toBeLessThan(y1);
    expect(svg).not.toContain('accuracy');
  });
});
