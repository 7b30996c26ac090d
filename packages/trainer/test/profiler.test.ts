import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { CallbackList, EarlyStopping, Profiler, Trainer, formatProfile, profileRows, type Callback, type TraceEvent } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';

/** A callback whose epoch end takes a known minimum time. */
class Slow implements Callback {
  onTrainEpochEnd(): void {
    const until = performance.now() + 5;
    while (performance.now() < until) {
      /* busy wait: the time the profiler must see */
    }
  }
}

async function fit(callbacks: Callback[], maxEpochs = 2) {
  const module = tinyModule(0);
  const { train, val } = loaders(64, 32, 16);
  const trainer = new Trainer({ maxEpochs, seed: 5, numSanityValSteps: 1 }, callbacks);
  const before = tf.memory().numTensors;
  await trainer.fit(module, train, val);
  trainer.optimizerConfig!.optimizer.dispose();
  module.model.dispose();
  return { trainer, grew: tf.memory().numTensors - before };
}

describe('Profiler', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('writes a valid Chrome trace with the hook names and a table whose totals add up', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-prof-'));
    const profiler = new Profiler({ dirpath: dir });
    await fit([profiler, new Slow(), new EarlyStopping({ patience: 10 })]);
    expect(profiler.lastReport).toEqual({ table: path.join(dir, 'fit-profile.txt'), trace: path.join(dir, 'fit-profile.trace.json') });

    const trace = JSON.parse(readFileSync(profiler.lastReport!.trace, 'utf8')) as { traceEvents: TraceEvent[] };
    expect(Array.isArray(trace.traceEvents)).toBe(true);
    for (const e of trace.traceEvents) {
      expect(typeof e.name).toBe('string');
      expect(typeof e.cat).toBe('string');
      expect(Number.isInteger(e.pid) && Number.isInteger(e.tid)).toBe(true);
      expect(e.ts).toBeGreaterThanOrEqual(0);
      if (e.ph === 'X') expect(e.dur).toBeGreaterThanOrEqual(0);
      else expect(e.ph).toBe('M');
    }
    const complete = trace.traceEvents.filter((e) => e.ph === 'X');
    const names = new Set(complete.map((e) => e.name));
    expect(names).toContain('[Callback]Slow.onTrainEpochEnd');
    expect(names).toContain('[Callback]EarlyStopping.onTrainEpochEnd');
    expect(names).toContain('[Callback]EarlyStopping.onTrainStart');

    const s = profiler.summary();
    // Batches: 4 training batches per epoch, 2 validation batches per validation plus the sanity check's one.
    expect(s.loops.map((r) => [r.name, r.count])).toEqual(expect.arrayContaining([['[Loop]train_batch', 8], ['[Loop]validation_batch', 5]]));
    for (const row of s.loops) {
      const events = complete.filter((e) => e.cat === 'loop' && e.name === row.name);
      expect(events.length).toBe(row.count);
      expect(events.reduce((t, e) => t + e.dur!, 0) / 1000).toBeCloseTo(row.totalMs, 6);
    }
    const slow = s.hooks.find((r) => r.name === '[Callback]Slow.onTrainEpochEnd')!;
    expect(slow.count).toBe(2);
    expect(slow.totalMs).toBeGreaterThanOrEqual(10);
    expect(slow.meanMs).toBeCloseTo(slow.totalMs / 2, 9);
    // The trace's events and the table's totals are the same measurements.
    for (const row of s.hooks) {
      const events = complete.filter((e) => e.cat === 'hook' && e.name === row.name);
      expect(events.length).toBe(row.count);
      expect(events.reduce((t, e) => t + e.dur!, 0) / 1000).toBeCloseTo(row.totalMs, 6);
    }
    // Kernels were timed, and their trace events carry the same totals.
    expect(s.kernels.length).toBeGreaterThan(0);
    expect(s.kernels.some((r) => /MatMul/.test(r.name))).toBe(true);
    // Composite ops run other kernels: kept apart so the kernels' total does not count time twice.
    expect(s.kernels.some((r) => r.name.endsWith('__op'))).toBe(false);
    for (const row of s.kernels) {
      const events = complete.filter((e) => e.cat === 'kernel' && e.name === row.name);
      expect(events.reduce((t, e) => t + Number(e.args!.count), 0)).toBe(row.count);
      expect(events.reduce((t, e) => t + e.dur!, 0) / 1000).toBeCloseTo(row.totalMs, 6);
    }
    // Sorted longest first; hooks' time fits in the wall time.
    for (let i = 1; i < s.hooks.length; i++) expect(s.hooks[i - 1].totalMs).toBeGreaterThanOrEqual(s.hooks[i].totalMs);
    expect(s.hooks.reduce((t, r) => t + r.totalMs, 0)).toBeLessThanOrEqual(s.wallMs);

    const table = readFileSync(profiler.lastReport!.table, 'utf8');
    expect(table).toMatch(/Profiler report: fit/);
    expect(table).toContain('[Callback]Slow.onTrainEpochEnd');
    const lines = table.split('\n');
    const totalLine = lines.slice(lines.findIndex((l) => l.startsWith('Hook'))).find((l) => l.startsWith('total'))!;
    expect(Number(totalLine.trim().split(/\s+/)[2])).toBeCloseTo(s.hooks.reduce((t, r) => t + r.totalMs, 0), 2);
  });

  it('does not leak tensors, and stops observing when the run ends', async () => {
    const without = await fit([]);
    const profiler = new Profiler({ dirpath: null });
    const withProfiler = await fit([profiler]);
    expect(withProfiler.grew).toBe(without.grew);
    const counted = profiler.summary().hooks.reduce((t, r) => t + r.count, 0);
    await fit([new EarlyStopping({ patience: 10 })]);
    expect(profiler.summary().hooks.reduce((t, r) => t + r.count, 0)).toBe(counted);
  });

  it('profiles a validate run on its own and names the report after the stage', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-prof-'));
    const profiler = new Profiler({ dirpath: dir, filename: 'p' });
    const module = tinyModule(0);
    const { val } = loaders(64, 32, 16);
    await new Trainer({}, [profiler]).validate(module, val);
    expect(profiler.lastReport!.table).toBe(path.join(dir, 'validate-p.txt'));
    const s = profiler.summary();
    expect(s.loops).toEqual([expect.objectContaining({ name: '[Loop]validation_batch', count: 2 })]);
    expect(s.hooks.map((r) => r.name)).not.toContain('[Callback]Profiler.onTrainBatchEnd');
    expect(s.kernels.length).toBeGreaterThan(0);
    module.model.dispose();
  });

  it('kernels: false times hooks only; maxTraceEvents caps the trace, not the totals', async () => {
    const profiler = new Profiler({ dirpath: null, kernels: false, maxTraceEvents: 5 });
    await fit([profiler, new Slow()], 1);
    const s = profiler.summary();
    expect(s.kernels).toEqual([]);
    const rows = s.hooks.reduce((t, r) => t + r.count, 0) + s.loops.reduce((t, r) => t + r.count, 0);
    expect(profiler.trace().traceEvents.filter((e) => e.ph === 'X')).toHaveLength(5);
    expect(s.droppedTraceEvents).toBe(rows - 5);
    expect(formatProfile(s)).toMatch(new RegExp(`${rows - 5} event\\(s\\) past maxTraceEvents`));
  });

  it('the observer point sees every callback and module hook, and can be removed', async () => {
    const seen: string[] = [];
    const cb = { onTrainStart: () => undefined };
    const module = { onTrainStart: () => undefined };
    const list = new CallbackList([cb]);
    const stop = list.observe({ hookStart: (h, _o, kind) => seen.push(`start ${kind} ${h}`), hookEnd: (h, _o, kind) => seen.push(`end ${kind} ${h}`) });
    await list.call('onTrainStart', module, {}, module);
    list.callSync('onTrainStart', module, {}, module);
    stop();
    await list.call('onTrainStart', module, {}, module);
    expect(seen).toEqual([
      'start callback onTrainStart', 'end callback onTrainStart', 'start module onTrainStart', 'end module onTrainStart',
      'start callback onTrainStart', 'end callback onTrainStart', 'start module onTrainStart', 'end module onTrainStart',
    ]);
  });

  it('the table: rows sorted by total, means, and a total line', () => {
    const rows = profileRows(new Map([['a', { totalMs: 2, count: 4 }], ['b', { totalMs: 6, count: 3 }]]));
    expect(rows).toEqual([{ name: 'b', count: 3, totalMs: 6, meanMs: 2 }, { name: 'a', count: 4, totalMs: 2, meanMs: 0.5 }]);
    const text = formatProfile({ wallMs: 16, hooks: rows, loops: [], kernels: [], composites: [], untimedKernels: 0 });
    const lines = text.split('\n');
    expect(lines.findIndex((l) => l.startsWith('b '))).toBeLessThan(lines.findIndex((l) => l.startsWith('a ')));
    expect(lines.find((l) => l.startsWith('total'))!.trim().split(/\s+/)).toEqual(['total', '7', '8.000', '50.00']);
    expect(() => new Profiler({ maxTraceEvents: -1 })).toThrow(ConfigError);
    expect(() => new Profiler({ filename: 'a/b' })).toThrow(ConfigError);
  });
});
