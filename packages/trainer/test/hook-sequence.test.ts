import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DataLoader, type Batch } from '@kiln/data';
import { ClassificationModule, Trainer, type Callback, type OptimizerConfig, type StepOutput } from '../src/index.js';
import { CALLBACK_HOOKS as HOOKS, syntheticDataset, tinyModule } from './helpers.js';


/** `name(batchIdx)` for batch hooks, `name(stage)` for setup/teardown, else `name`. */
function label(hook: string, args: unknown[]): string {
  if (hook === 'setup' || hook === 'teardown') return `${hook}(${args[args.length - 1]})`;
  if (hook.includes('Batch')) return `${hook}(${args[args.length - 1]})`;
  return hook;
}

/** A callback recording every hook as `<prefix>.<hook>`. */
function recorder(log: string[], prefix: string, only?: readonly string[]): Callback {
  const cb: Record<string, unknown> = {};
  for (const h of only ?? HOOKS) cb[h] = (...args: unknown[]) => void log.push(`${prefix}.${label(h, args)}`);
  return cb as Callback;
}

/**
 * A module recording its own hooks (bare names) and its steps. Each also checks that `this.trainer`
 * is the trainer running it, and records `<name> without this.trainer` when it is not.
 */
function recordingModule(log: string[], trainer: () => Trainer): ClassificationModule {
  const base = tinyModule();
  const module = base as ClassificationModule & Record<string, unknown>;
  const check = (name: string) => {
    if (module.trainer !== trainer()) log.push(`${name} without this.trainer`);
  };
  for (const h of HOOKS) {
    module[h] = (...args: unknown[]) => {
      log.push(label(h, args));
      check(h);
    };
  }
  const wrap = <K extends 'trainingStep' | 'validationStep' | 'testStep' | 'predictStep'>(k: K) => {
    const f = base[k].bind(base) as (b: Batch, i: number) => StepOutput & tf.Tensor;
    module[k] = ((b: Batch, i: number) => {
      log.push(`${k}(${i})`);
      check(k);
      return f(b, i);
    }) as never;
  };
  (['trainingStep', 'validationStep', 'testStep', 'predictStep'] as const).forEach(wrap);
  const configure = base.configureOptimizers.bind(base);
  module.configureOptimizers = (): OptimizerConfig => {
    log.push('configureOptimizers');
    check('configureOptimizers');
    return configure() as OptimizerConfig;
  };
  return module;
}

/** The sequence named `name` in docs/hooks.md: the fenced block after `<!-- sequence: name -->`. */
function documented(name: string): string[] {
  const doc = readFileSync(new URL('../../../docs/hooks.md', import.meta.url), 'utf8');
  const m = doc.match(new RegExp(`<!-- sequence: ${name} -->\\s*\`\`\`text\\n([\\s\\S]*?)\`\`\``));
  if (!m) throw new Error(`docs/hooks.md has no sequence '${name}'`);
  // One call per line; anything after two spaces is a comment.
  return m[1].split('\n').map((l) => l.split(/\s{2,}/)[0].trim()).filter((l) => l.length > 0);
}

const loader = (n: number) => new DataLoader(syntheticDataset(n, 3), { batchSize: 16 });

// The module's hooks also check `this.trainer` in every one of them: a hook without it would add a
// line the documented sequence does not have.
describe('hook sequence, module and callbacks together, as docs/hooks.md lists it', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('fit, then a resumed fit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-hooks-'));
    try {
      const ckpt = join(dir, 'epoch.ckpt');
      const log: string[] = [];
      // A monitoring callback (like ModelCheckpoint) that writes a checkpoint at the epoch's end.
      const saver: Callback = { monitorsMetrics: true, onTrainEpochEnd: async (t) => {
        log.push('Monitoring.onTrainEpochEnd');
        await t.saveCheckpoint(ckpt);
      } };
      const trainer = new Trainer({ maxEpochs: 1, numSanityValSteps: 1 }, [recorder(log, 'Callback'), saver]);
      await trainer.fit(recordingModule(log, () => trainer), loader(32), loader(16));
      trainer.optimizerConfig!.optimizer.dispose();
      expect(log).toEqual(documented('fit'));

      const resumed: string[] = [];
      const again = new Trainer({ maxEpochs: 2, numSanityValSteps: 0 }, [recorder(resumed, 'Callback')]);
      await again.fit(recordingModule(resumed, () => again), loader(32), undefined, ckpt);
      again.optimizerConfig!.optimizer.dispose();
      expect(resumed).toEqual(documented('resume'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validate, test, predict', async () => {
    for (const stage of ['validate', 'test', 'predict'] as const) {
      const log: string[] = [];
      const trainer = new Trainer({}, [recorder(log, 'Callback')]);
      const out = await trainer[stage](recordingModule(log, () => trainer), loader(16));
      if (Array.isArray(out)) tf.dispose(out);
      expect(log, stage).toEqual(documented(stage));
    }
  });
});
