/**
 * How many compute threads the `wasm` backend starts with when neither `numThreads` nor
 * `KILN_NUM_THREADS` says. Kept free of Node so the rule can be tested with any core count and load.
 */

/** What the choice is made from. */
export interface ThreadChoiceInput {
  /** Logical cores this process may use (`os.availableParallelism()`). */
  cores: number;
  /** The 1-, 5- and 15-minute load averages (`os.loadavg()`), or undefined where the host has none. */
  loadavg?: readonly number[];
  /** Whether oneDNN's kernels are loaded (its OpenMP pool gets the threads, with passive waiting). */
  dnnl: boolean;
}

/** The chosen count and, for the backend's description, why. */
export interface ThreadChoice {
  /** Threads, at least 1 and at most `cores`. */
  threads: number;
  /** One phrase: which rule chose the count. */
  reason: string;
}

/**
 * The default thread count.
 *
 * - oneDNN loaded: every core, whatever the load. Its OpenMP threads wait passively
 *   (`OMP_WAIT_POLICY=passive`, set when the addon loads), so a thread whose core another process
 *   holds sleeps instead of spinning, and the count never depends on the moment the run started.
 *   Choosing from the load made consecutive runs of the same job differ by 1.4–1.9× on a shared
 *   2-core machine (docs/benchmarks.md, "End to end").
 * - Without oneDNN the threaded WASM build's pool spins while it waits, and a spinning pool on
 *   cores other processes use is several times slower than one thread: the cores not busy, i.e.
 *   cores − the smaller of the 1- and 5-minute load averages, rounded, at least 1. The smaller of the
 *   two, so that neither a burst that has just started (only the 1-minute average is up) nor a job
 *   that has just ended (only the 5-minute average is still up) takes threads away.
 */
export function chooseThreads({ cores, loadavg, dnnl }: ThreadChoiceInput): ThreadChoice {
  const n = Math.max(1, Math.floor(cores));
  if (dnnl) return { threads: n, reason: 'all cores (oneDNN, passive waiting)' };
  const [one, five] = loadavg ?? [];
  if (!Number.isFinite(one) || !Number.isFinite(five)) return { threads: n, reason: 'all cores (no load average here)' };
  const busy = Math.min(one, five);
  const threads = Math.min(n, Math.max(1, Math.round(n - busy)));
  return { threads, reason: `idle cores (${n} − load ${busy.toFixed(2)})` };
}
