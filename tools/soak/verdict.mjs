// The soak's verdict, a pure function of the per-epoch samples so that it can be tested without
// training (tools/soak/test/verdict.test.mjs).
//
// It judges what issue #17 asks, literally: a flat live tensor count and RSS within 5% after the
// first epoch. The baseline is RSS at the end of epoch 1 and every later epoch end is compared with
// it. A bound on the maximum alone would pass a leak too slow to cross the 5% line within the run,
// so the least-squares slope of RSS over the run after a settling stretch (the first
// SLOPE_SKIP_FRACTION of the epochs, where one-time steps such as the JIT tiering up and capped
// buffers filling belong), extrapolated over that same stretch, must also add less than
// SLOPE_BOUND of the baseline.
//
// An earlier version took its baseline after a warm-up (the first 10% of the epochs) because V8
// doubled its young generation over the first epochs (+16 MiB after epoch 1). `kiln` now has V8
// grow the young generation to its cap in one step (apps/cli/bin/young-generation.mjs), and the
// soak starts the same way, so that step falls inside epoch 1 and there is no warm-up to excuse.

/** Largest RSS after epoch 1, relative to RSS at the end of epoch 1: within 5%. */
export const RSS_BOUND = 0.05;
/** Fraction of the run's epochs left out of the slope fit (at least epoch 1); the 5% bound still covers them. */
export const SLOPE_SKIP_FRACTION = 0.1;
/** Fitted RSS growth over the fitted stretch, relative to RSS at the end of epoch 1. */
export const SLOPE_BOUND = 0.02;

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
 * Returns the numbers it decided on and `pass`.
 */
export function judge(samples) {
  const fromEpoch1 = samples.filter((s) => s.epoch >= 1);
  const epoch1 = fromEpoch1[0];
  const later = fromEpoch1.slice(1);
  const last = samples.at(-1)?.epoch ?? 0;
  const fitFrom = Math.max(1, Math.ceil(last * SLOPE_SKIP_FRACTION));
  const fitted = samples.filter((s) => s.epoch > fitFrom);
  const tensorsFlat = fromEpoch1.length > 0 && fromEpoch1.every((s) => s.numTensors === epoch1.numTensors);
  const rssEpoch1 = epoch1?.rssMiB ?? NaN;
  const worst = later.reduce((w, s) => (w === undefined || s.rssMiB > w.rssMiB ? s : w), undefined);
  const rssMax = worst?.rssMiB ?? NaN;
  const rssGrowth = rssMax / rssEpoch1 - 1;
  const kibPerEpoch = slope(fitted.map((s) => s.epoch), fitted.map((s) => s.rssMiB)) * 1024;
  const span = fitted.length ? fitted.at(-1).epoch - fitted[0].epoch : 0;
  const fittedGrowth = (kibPerEpoch / 1024) * span / rssEpoch1;
  // Enough epochs to judge: a fit over a handful of epochs says nothing about a long run.
  const enough = fitted.length >= 10;
  return {
    epochs: samples.length,
    tensorsFlat,
    tensorCount: epoch1?.numTensors,
    rssEpoch1MiB: rssEpoch1,
    rssMaxMiB: rssMax,
    rssMaxEpoch: worst?.epoch,
    rssGrowth,
    slopeFromEpoch: fitFrom,
    rssSlopeKiBPerEpoch: kibPerEpoch,
    rssFittedGrowth: fittedGrowth,
    pass: enough && tensorsFlat && rssGrowth <= RSS_BOUND && fittedGrowth <= SLOPE_BOUND,
  };
}
