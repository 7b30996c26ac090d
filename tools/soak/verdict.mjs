// The soak's verdict, a pure function of the per-epoch samples so that it can be tested without
// training (tools/soak/test/verdict.test.mjs).
//
// Why the RSS baseline is not the end of epoch 1: the process is not in a steady state yet. V8
// sizes its young generation by the allocation rate, doubling each semi-space up to its cap
// (16 MiB each on 64-bit Node 20), and a training loop that allocates short-lived objects every
// step reaches that cap a few epochs in: a one-time step of +16 MiB of RSS (measured: heapTotal
// and V8's new_space grow by exactly that in the same epoch, nothing else does). So the first
// WARMUP_FRACTION of the run is warm-up, and the run passes when, after it, the tensor count is
// flat (checked from epoch 1 on, which the warm-up does not relax), RSS never exceeds the
// baseline by more than RSS_BOUND, and the least-squares slope of RSS over the rest of the run,
// extrapolated over that same stretch, adds less than SLOPE_BOUND of the baseline: a leak too
// slow to cross the 5% line in 30 minutes still fails on its slope.

/** Fraction of the run's epochs treated as warm-up (at least epoch 1). */
export const WARMUP_FRACTION = 0.1;
/** Largest RSS after the warm-up, relative to the baseline: within 5%. */
export const RSS_BOUND = 0.05;
/** Fitted RSS growth over the measured stretch, relative to the baseline. */
export const SLOPE_BOUND = 0.02;
/** Samples whose median is the baseline (one epoch-end sample can catch a transient buffer). */
const BASELINE_WINDOW = 5;

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Least-squares slope of y over x (0 for fewer than two points). */
export function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

/**
 * Judges a soak from its samples (`{ epoch, numTensors, rssMiB }` at each epoch end, in order).
 * Returns the numbers it decided on and `pass`. Also reports, without judging on it, RSS growth
 * against the end of epoch 1, so the warm-up's size stays visible.
 */
export function judge(samples) {
  const fromEpoch1 = samples.filter((s) => s.epoch >= 1);
  const last = samples.at(-1)?.epoch ?? 0;
  const warmupEnd = Math.max(1, Math.ceil(last * WARMUP_FRACTION));
  const warm = samples.filter((s) => s.epoch <= warmupEnd && s.epoch >= 1).slice(-BASELINE_WINDOW);
  const tail = samples.filter((s) => s.epoch > warmupEnd);
  const tensorsFlat = fromEpoch1.length > 0 && fromEpoch1.every((s) => s.numTensors === fromEpoch1[0].numTensors);
  const baseline = warm.length ? median(warm.map((s) => s.rssMiB)) : NaN;
  const rssMax = tail.length ? Math.max(...tail.map((s) => s.rssMiB)) : NaN;
  const rssGrowth = rssMax / baseline - 1;
  const kibPerEpoch = slope(tail.map((s) => s.epoch), tail.map((s) => s.rssMiB)) * 1024;
  const span = tail.length ? tail.at(-1).epoch - tail[0].epoch : 0;
  const fittedGrowth = (kibPerEpoch / 1024) * span / baseline;
  const epoch1 = fromEpoch1[0]?.rssMiB ?? NaN;
  // Enough tail to judge: a fit over a handful of epochs says nothing about a long run.
  const enough = tail.length >= 10;
  return {
    epochs: samples.length,
    tensorsFlat,
    tensorCount: fromEpoch1[0]?.numTensors,
    warmupEpochs: warmupEnd,
    rssEpoch1MiB: epoch1,
    rssBaselineMiB: baseline,
    rssMaxMiB: rssMax,
    rssGrowth,
    rssGrowthFromEpoch1: rssMax / epoch1 - 1,
    rssSlopeKiBPerEpoch: kibPerEpoch,
    rssFittedGrowth: fittedGrowth,
    pass: enough && tensorsFlat && rssGrowth <= RSS_BOUND && fittedGrowth <= SLOPE_BOUND,
  };
}
