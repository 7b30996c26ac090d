import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireOrSkip } from '../../../tools/testing/require-or-skip.js';
import { tf } from '@kiln/core';
import { readCheckpoint } from '@kiln/trainer';
import { fineTuneCommand, parseClasses } from '../src/commands/fine-tune.js';
import { missingFashionMnist } from './fashion-mnist.js';

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fineTuneCommand.run(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, err, summary: JSON.parse(out[out.length - 1]) };
}

describe('kiln fine-tune', () => {
  it(
    'trains on classes 0–4, then fine-tunes a new head on classes 5–9 with the backbone frozen',
    async (ctx) => {
      requireOrSkip(ctx, missingFashionMnist);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-ft-'));
      const base = await run('--scratch', '--model', 'lenet5', '--dataset', 'fashion-mnist', '--classes', '0-4', '--limit-train', '3000', '--epochs', '1', '--out', path.join(dir, 'base'), '--backend', 'wasm');
      expect(base.code).toBe(0);
      expect(base.summary).toMatchObject({ classes: [0, 1, 2, 3, 4], new_head: true, trainable_parameters: 61_706 - 85 * 10 + 85 * 5 });
      expect(base.summary.test_accuracy).toBeGreaterThan(0.5);
      const ckpt = path.join(dir, 'base', 'checkpoints', 'best.ckpt');
      expect(existsSync(ckpt)).toBe(true);

      const ft = await run('--from', ckpt, '--dataset', 'fashion-mnist', '--classes', '5-9', '--freeze-backbone', '--new-head', '--limit-train', '1000', '--epochs', '3', '--lr', '0.01', '--out', path.join(dir, 'ft'), '--backend', 'wasm');
      expect(ft.code).toBe(0);
      // Only the 84→5 head trains.
      expect(ft.summary).toMatchObject({ model: 'lenet5', classes: [5, 6, 7, 8, 9], freeze_backbone: true, new_head: true, trainable_parameters: 84 * 5 + 5 });
      // Chance is 0.2 on five classes.
      expect(ft.summary.test_accuracy).toBeGreaterThan(0.5);
      expect(JSON.parse(readFileSync(path.join(dir, 'ft', 'summary.json'), 'utf8'))).toEqual(ft.summary);

      // The backbone in the fine-tuned checkpoint is the base checkpoint's, bit for bit; the head is new.
      const a = readCheckpoint(ckpt);
      const b = readCheckpoint(path.join(dir, 'ft', 'checkpoints', 'last.ckpt'));
      for (const key of Object.keys(a.modelState)) {
        if (key.startsWith('classifier.4.')) continue;
        expect(tf.max(tf.abs(tf.sub(a.modelState[key], b.modelState[key]))).dataSync()[0], key).toBe(0);
      }
      expect(b.modelState['classifier.4.weight'].shape).toEqual([84, 5]);
      expect(b.meta.cli).toMatchObject({ classes: ['Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'], classIndices: [5, 6, 7, 8, 9] });
      expect(ft.summary.class_names).toEqual(['Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
      tf.dispose([...Object.values(a.modelState), ...Object.values(b.modelState), ...Object.values(a.optimizerSlots), ...Object.values(b.optimizerSlots)]);
    },
    300_000,
  );

  it('parses class lists and names bad ones', () => {
    expect(parseClasses('5-9', 10)).toEqual([5, 6, 7, 8, 9]);
    expect(parseClasses('0,2, 4-5', 10)).toEqual([0, 2, 4, 5]);
    expect(parseClasses(undefined, 3)).toEqual([0, 1, 2]);
    expect(() => parseClasses('7-12', 10)).toThrow(/--classes/);
    expect(() => parseClasses('a', 10)).toThrow(/0\.\.9/);
  });

  it('needs exactly one starting point', async () => {
    await expect(run('--dataset', 'fashion-mnist')).rejects.toThrow(/exactly one of --from CKPT, --pretrained FILE and --scratch/);
  });
});
