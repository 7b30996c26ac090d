import { tf, ConfigError } from '@kiln/core';
import type { Callback, Stage } from '../callback.js';
import type { HookObserver } from '../callback-list.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of {@link Profiler}. */
export interface ProfilerOptions {
  /** Folder the reports are written to (default `profiles`); null writes nothing (read `summary()`). */
  dirpath?: string | null;
  /** Report name: `<stage>-<filename>.txt` (the table) and `<stage>-<filename>.trace.json` (default `profile`). */
  filename?: string;
  /**
   * Time every tfjs kernel too (default true). Kernels run under `tf.profile`, which makes the
   * engine time each kernel with the backend's timer (GPU timer queries on WebGL/WebGPU) and keep a
   * record per kernel: it slows training, so profile a few epochs, not a whole run.
   */
  kernels?: boolean;
  /** Most events kept for the Chrome trace; totals in the table count everything (default 200000). */
  maxTraceEvents?: number;
}

/** One line of the table: an action (a hook of a callback or the module, or a kernel) and its times. */
export interface ProfileRow {
  /** What was timed: `[Callback]<class>.<hook>`, `[Module]<class>.<hook>`, `[Loop]<loop>_batch`, or a kernel name. */
  name: string;
  /** Times it ran (for a kernel, its runs summed over the batches). */
  count: number;
  /** Summed time, in milliseconds. */
  totalMs: number;
  /** `totalMs / count`, in milliseconds (0 when `count` is 0). */
  meanMs: number;
}

/** What a {@link Profiler} measured over one stage (`fit`, `validate`, `test` or `predict`), as rows of the report table. */
export interface ProfileSummary {
  /** Wall time from the stage's setup to its teardown. */
  wallMs: number;
  /** Per hook, sorted by total time, longest first. */
  hooks: ProfileRow[];
  /** Per loop (`[Loop]train_batch`, …): the batches between the Profiler's batch hooks, the step included. */
  loops: ProfileRow[];
  /** Per kernel name, sorted by total time (empty with `kernels: false`). */
  kernels: ProfileRow[];
  /**
   * Composite ops (tfjs names them `<op>__op`: ops built with a custom gradient, such as
   * `logSoftmax`), which run other kernels: their time includes those kernels', which are counted
   * in `kernels` too, so they are kept apart and out of the kernels' total.
   */
  composites: ProfileRow[];
  /** Kernels whose backend gave no time (WebGL without a reliable timer query): not in `kernels`. */
  untimedKernels: number;
  /** Events left out of the trace past `maxTraceEvents` (still counted in the rows). */
  droppedTraceEvents?: number;
}

/** An event of the Trace Event Format: a complete event (`ph: 'X'`) or a thread-name metadata event (`ph: 'M'`); times in microseconds. */
export interface TraceEvent {
  /** The hook, loop or kernel timed (the row name), or `thread_name` for a metadata event. */
  name: string;
  /** Category: `hook`, `loop`, `kernel`, or `__metadata`. */
  cat: string;
  /** Phase: `X` a complete event (start and duration), `M` metadata naming a thread. */
  ph: 'X' | 'M';
  /** Start, in microseconds since the stage's setup (0 for metadata). */
  ts: number;
  /** Duration in microseconds (complete events only). */
  dur?: number;
  /** Process id (always 1). */
  pid: number;
  /** Track the event is drawn on: 1 hooks, 2 kernels, 3 batches. */
  tid: number;
  /** Extra fields: a kernel event's `count` of runs, a metadata event's thread `name`. */
  args?: Record<string, unknown>;
}

const HOOK_TID = 1;
const KERNEL_TID = 2;
const LOOP_TID = 3;

/** Rows from (name → total ms, count), longest total first. Pure. */
export function profileRows(totals: Map<string, { totalMs: number; count: number }>): ProfileRow[] {
  return [...totals]
    .map(([name, { totalMs, count }]) => ({ name, count, totalMs, meanMs: count > 0 ? totalMs / count : 0 }))
    .sort((a, b) => b.totalMs - a.totalMs || a.name.localeCompare(b.name));
}

/** The summary as a fixed-width text table (Lightning's SimpleProfiler report). Pure. */
export function formatProfile(summary: ProfileSummary, title = 'Profiler report'): string {
  const section = (head: string, rows: ProfileRow[]): string[] => {
    const width = Math.max(head.length, ...rows.map((r) => r.name.length));
    const total = rows.reduce((s, r) => s + r.totalMs, 0);
    const line = (a: string, b: string, c: string, d: string, e: string) => `${a.padEnd(width)}  ${b.padStart(12)}  ${c.padStart(8)}  ${d.padStart(12)}  ${e.padStart(7)}`;
    const out = [line(head, 'mean (ms)', 'count', 'total (ms)', '%'), '-'.repeat(width + 47)];
    for (const r of rows) out.push(line(r.name, r.meanMs.toFixed(4), String(r.count), r.totalMs.toFixed(3), ((100 * r.totalMs) / (summary.wallMs || 1)).toFixed(2)));
    out.push(line('total', '', String(rows.reduce((s, r) => s + r.count, 0)), total.toFixed(3), ((100 * total) / (summary.wallMs || 1)).toFixed(2)));
    return out;
  };
  const lines = [title, `wall time ${summary.wallMs.toFixed(3)} ms; % is of the wall time`, ''];
  if (summary.loops.length > 0) lines.push(...section('Batch', summary.loops), '');
  lines.push(...section('Hook', summary.hooks));
  if (summary.kernels.length > 0 || summary.untimedKernels > 0) {
    lines.push('', ...section('Kernel', summary.kernels));
    if (summary.composites.length > 0) lines.push('', 'Composite ops (their inner kernels are counted above too)', ...section('Composite op', summary.composites));
    if (summary.untimedKernels > 0) lines.push(`${summary.untimedKernels} kernel run(s) had no time from the backend and are not counted`);
  }
  if (summary.droppedTraceEvents) lines.push('', `${summary.droppedTraceEvents} event(s) past maxTraceEvents are not in the trace (they are counted here)`);
  return `${lines.join('\n')}\n`;
}

/** A Chrome trace (chrome://tracing, Perfetto): thread names first, then the events. Pure. */
export function chromeTrace(events: TraceEvent[]): {
  /** The three thread-name metadata events, then `events` in the order given. */
  traceEvents: TraceEvent[];
  /** Unit the trace viewer displays times in. */
  displayTimeUnit: 'ms';
} {
  const meta = (tid: number, name: string): TraceEvent => ({ name: 'thread_name', cat: '__metadata', ph: 'M', ts: 0, pid: 1, tid, args: { name } });
  return { traceEvents: [meta(LOOP_TID, 'batches'), meta(HOOK_TID, 'hooks'), meta(KERNEL_TID, 'kernels'), ...events], displayTimeUnit: 'ms' };
}

/**
 * Times every batch (`[Loop]train_batch`, the step included), every hook the trainer dispatches
 * (each callback's and the module's, Lightning's `[Callback]X.on_…` rows) and, optionally, every
 * tfjs kernel, and writes at the end of each run (`fit`, `validate`, `test`, `predict`) a table of
 * total, count and mean per batch loop, hook and kernel, and a Chrome trace of all three.
 *
 * Hooks are timed through the CallbackList's observer point (`trainer.callbacks.observe`), so
 * nothing is wrapped and a trainer without a Profiler does no timing work at all.
 *
 * Why `tf.profile` for kernels: it is tfjs's public per-kernel profiler; the engine times each
 * kernel with the backend's own timer (on GPU backends the device time, not the time to enqueue),
 * where wrapping the kernels of the kernel registry would measure enqueue time on GPU backends and
 * rewrite a global registry other code shares. `tf.profile` records one window: the profiler opens
 * one per batch (closing it at the batch's end hook) so that the engine's per-kernel records stay
 * small (the engine also spreads them into one `Math.max(...)` call, which a whole run's records
 * would overflow), and folds each window into per-kernel totals. The engine reports a kernel's duration, not
 * its start, so the trace shows per window one event per kernel name with its summed time, laid end
 * to end from the window's start. Do not call `tf.profile` yourself while a Profiler runs.
 */
export class Profiler implements Callback, HookObserver {
  readonly stateKey = 'Profiler';
  private hookTotals = new Map<string, { totalMs: number; count: number }>();
  private loopTotals = new Map<string, { totalMs: number; count: number }>();
  private batchStart: number | null = null;
  private kernelTotals = new Map<string, { totalMs: number; count: number }>();
  private compositeTotals = new Map<string, { totalMs: number; count: number }>();
  private untimed = 0;
  private events: TraceEvent[] = [];
  private dropped = 0;
  private open = new Map<string, number>();
  private origin = 0;
  private wallMs = 0;
  private running = false;
  private stopObserving: (() => void) | null = null;
  private window: { end: () => void; done: ReturnType<typeof tf.profile>; start: number } | null = null;
  /** Files of the last report written. */
  lastReport: {
    /** Path of the text table, `<dirpath>/<stage>-<filename>.txt`. */
    table: string;
    /** Path of the Chrome trace, `<dirpath>/<stage>-<filename>.trace.json`. */
    trace: string;
  } | null = null;

  constructor(private readonly options: ProfilerOptions = {}) {
    const max = options.maxTraceEvents ?? 200_000;
    if (!Number.isInteger(max) || max < 0) throw new ConfigError('Profiler.maxTraceEvents', 'a non-negative integer', options.maxTraceEvents);
    if (options.filename !== undefined && (options.filename === '' || /[/\\]/.test(options.filename))) throw new ConfigError('Profiler.filename', 'a file name without folders', options.filename);
  }

  private now(): number {
    return performance.now();
  }

  setup(trainer: Trainer): void {
    this.hookTotals = new Map();
    this.loopTotals = new Map();
    this.batchStart = null;
    this.kernelTotals = new Map();
    this.compositeTotals = new Map();
    this.untimed = 0;
    this.events = [];
    this.dropped = 0;
    this.open = new Map();
    this.origin = this.now();
    this.running = true;
    this.stopObserving = trainer.callbacks.observe(this);
    if (this.options.kernels ?? true) this.openWindow();
  }

  /** Notes when a hook starts (called by the CallbackList while this Profiler observes it). */
  hookStart(hook: keyof Callback, owner: object, kind: 'callback' | 'module'): void {
    if (this.running) this.open.set(hookName(hook, owner, kind), this.now());
  }

  /** Adds the hook's time since its start to its row and records it as a trace event. */
  hookEnd(hook: keyof Callback, owner: object, kind: 'callback' | 'module'): void {
    if (!this.running) return;
    const name = hookName(hook, owner, kind);
    const t0 = this.open.get(name);
    if (t0 === undefined) return;
    this.open.delete(name);
    const dur = this.now() - t0;
    add(this.hookTotals, name, dur, 1);
    this.record({ name, cat: 'hook', ph: 'X', ts: this.micros(t0), dur: dur * 1000, pid: 1, tid: HOOK_TID });
  }

  onTrainBatchStart(): void {
    this.batchStart = this.now();
  }

  onValidationBatchStart(): void {
    this.batchStart = this.now();
  }

  onTestBatchStart(): void {
    this.batchStart = this.now();
  }

  onPredictBatchStart(): void {
    this.batchStart = this.now();
  }

  async onTrainBatchEnd(): Promise<void> {
    await this.batchEnd('train');
  }

  async onValidationBatchEnd(): Promise<void> {
    await this.batchEnd('validation');
  }

  async onTestBatchEnd(): Promise<void> {
    await this.batchEnd('test');
  }

  async onPredictBatchEnd(): Promise<void> {
    await this.batchEnd('predict');
  }

  /**
   * Records `[Loop]<loop>_batch`, the time from this Profiler's batch-start hook to its batch-end
   * hook: the step itself (forward, backward, optimizer), metric bookkeeping, logging, and the
   * batch hooks of callbacks registered after it at the start and before it at the end (register
   * the Profiler first to keep those out). Then starts the next kernel window.
   */
  private async batchEnd(loop: string): Promise<void> {
    if (this.batchStart !== null) {
      const t0 = this.batchStart;
      const dur = this.now() - t0;
      const name = `[Loop]${loop}_batch`;
      add(this.loopTotals, name, dur, 1);
      this.record({ name, cat: 'loop', ph: 'X', ts: this.micros(t0), dur: dur * 1000, pid: 1, tid: LOOP_TID });
      this.batchStart = null;
    }
    await this.nextWindow();
  }

  /** Writes the reports of the run that ends (after this, other callbacks' teardown is not timed). */
  async teardown(trainer: Trainer, _m: TrainingModule, stage: Stage): Promise<void> {
    await this.closeWindow();
    this.wallMs = this.now() - this.origin;
    this.running = false;
    this.stopObserving?.();
    this.stopObserving = null;
    const dir = this.options.dirpath === undefined ? 'profiles' : this.options.dirpath;
    if (dir === null) return;
    const base = `${dir}${/[\\/]$/.test(dir) ? '' : '/'}${stage}-${this.options.filename ?? 'profile'}`;
    const table = `${base}.txt`;
    const trace = `${base}.trace.json`;
    await trainer.storage.write(table, formatProfile(this.summary(), `Profiler report: ${stage}`));
    await trainer.storage.write(trace, JSON.stringify(this.trace()));
    this.lastReport = { table, trace };
  }

  /** The totals of the last (or running) stage. */
  summary(): ProfileSummary {
    return {
      wallMs: this.running ? this.now() - this.origin : this.wallMs,
      hooks: profileRows(this.hookTotals),
      loops: profileRows(this.loopTotals),
      kernels: profileRows(this.kernelTotals),
      composites: profileRows(this.compositeTotals),
      untimedKernels: this.untimed,
      droppedTraceEvents: this.dropped,
    };
  }

  /** The events recorded so far as a Chrome trace object. */
  trace(): ReturnType<typeof chromeTrace> {
    return chromeTrace(this.events);
  }

  /** Keeps one event for the trace (none once `maxTraceEvents` are kept). */
  private record(event: TraceEvent): void {
    if (this.events.length < (this.options.maxTraceEvents ?? 200_000)) this.events.push(event);
    else this.dropped++;
  }

  private micros(t: number): number {
    return (t - this.origin) * 1000;
  }

  private openWindow(): void {
    let end!: () => void;
    const until = new Promise<void>((resolve) => (end = resolve));
    this.window = { end, done: tf.profile(() => until), start: this.now() };
  }

  /**
   * Ends the current kernel window and folds it in. The next window opens only after this one's
   * `tf.profile` returned: the engine keeps one active profile, which a new one would reset.
   */
  private async closeWindow(): Promise<void> {
    const w = this.window;
    if (!w) return;
    this.window = null;
    w.end();
    const info = await w.done;
    const perName = new Map<string, { totalMs: number; count: number }>();
    for (const k of info.kernels) {
      const ms = k.kernelTimeMs as unknown;
      if (typeof ms !== 'number') {
        this.untimed++;
        continue;
      }
      if (k.name.endsWith('__op')) add(this.compositeTotals, k.name, ms, 1);
      else add(perName, k.name, ms, 1);
    }
    let at = this.micros(w.start);
    for (const [name, { totalMs, count }] of perName) {
      add(this.kernelTotals, name, totalMs, count);
      this.record({ name, cat: 'kernel', ph: 'X', ts: at, dur: totalMs * 1000, pid: 1, tid: KERNEL_TID, args: { count } });
      at += totalMs * 1000;
    }
  }

  private async nextWindow(): Promise<void> {
    if (!this.window) return;
    await this.closeWindow();
    this.openWindow();
  }
}

function add(m: Map<string, { totalMs: number; count: number }>, name: string, ms: number, count: number): void {
  const e = m.get(name);
  if (e) {
    e.totalMs += ms;
    e.count += count;
  } else m.set(name, { totalMs: ms, count });
}

/** `[Callback]EarlyStopping.onTrainEpochEnd`, `[Module]ClassificationModule.onTrainStart` (Lightning's row names). */
function hookName(hook: keyof Callback, owner: object, kind: 'callback' | 'module'): string {
  return `[${kind === 'module' ? 'Module' : 'Callback'}]${owner.constructor?.name || 'anonymous'}.${String(hook)}`;
}
