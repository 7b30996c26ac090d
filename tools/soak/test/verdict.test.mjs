// node --test tools/soak/test/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judge, slope } from '../verdict.mjs';

/** Samples for epochs 0..n-1 with RSS from `rss(epoch)` and 50 live tensors unless `tensors` says otherwise. */
function run(n, rss, tensors = () => 50) {
  return Array.from({ length: n }, (_, epoch) => ({ epoch, numTensors: tensors(epoch), rssMiB: rss(epoch) }));
}

test('slope is the least-squares fit', () => {
  assert.equal(slope([0, 1, 2, 3], [1, 3, 5, 7]), 2);
  assert.equal(slope([0, 1, 2], [4, 4, 4]), 0);
  assert.equal(slope([5], [1]), 0);
});

test('RSS flat after epoch 1, with page-sized noise, passes', () => {
  // A large step in epoch 0 (start-up: the dataset decoded) and at epoch 1 itself is before the baseline.
  const v = judge(run(1000, (e) => (e === 0 ? 290 : 190) + ((e * 7919) % 5) * 0.25));
  assert.equal(v.pass, true);
  assert.equal(v.rssEpoch1MiB, 191); // 190 + the noise at epoch 1
  assert.ok(v.rssGrowth < 0.01, `growth ${v.rssGrowth}`);
  assert.equal(v.slopeFromEpoch, 100);
  assert.ok(Math.abs(v.rssSlopeKiBPerEpoch) < 1);
});

test('a one-time step after epoch 1 larger than 5% of epoch 1 fails, however early it comes', () => {
  // V8's young generation doubling at epoch 2 (+16 MiB on 190): what the old warm-up baseline excused.
  const v = judge(run(1000, (e) => 190 + (e >= 2 ? 16 : 0)));
  assert.equal(v.pass, false);
  assert.ok(Math.abs(v.rssGrowth - 16 / 190) < 1e-9);
  assert.equal(v.rssMaxEpoch, 2);
  assert.ok(Math.abs(v.rssSlopeKiBPerEpoch) < 1e-9, 'flat after the step: it fails on the bound, not the slope');
});

test('an early step within 5% of epoch 1 passes, one just over it fails', () => {
  // At epoch 50, before the slope fit starts (a step in the fitted stretch also tilts the fit).
  assert.equal(judge(run(1000, (e) => (e >= 50 ? 209 : 200))).pass, true);
  const v = judge(run(1000, (e) => (e >= 50 ? 210.5 : 200)));
  assert.equal(v.pass, false);
  assert.ok(Math.abs(v.rssGrowth - 0.0525) < 1e-9);
});

test('a single epoch end over the bound fails, even late in the run', () => {
  const v = judge(run(1000, (e) => (e === 999 ? 215 : 200)));
  assert.equal(v.pass, false);
  assert.equal(v.rssMaxEpoch, 999);
});

test('a slow leak that stays under 5% fails on its slope', () => {
  // 8 KiB per epoch: +3.5% over 900 epochs, under the 5% line, but a leak.
  const v = judge(run(1000, (e) => 200 + (e * 8) / 1024));
  assert.ok(v.rssGrowth < 0.05, `growth ${v.rssGrowth}`);
  assert.ok(Math.abs(v.rssSlopeKiBPerEpoch - 8) < 1e-6);
  assert.ok(v.rssFittedGrowth > 0.02, `fitted ${v.rssFittedGrowth}`);
  assert.equal(v.pass, false);
});

test('growth in the first 10% of the epochs is left out of the slope but not out of the 5% bound', () => {
  // +6 MiB over epochs 2..50 (3% of epoch 1), flat after: the fit sees a flat tail and passes.
  const v = judge(run(1000, (e) => 200 + Math.min(Math.max(e - 1, 0), 49) * (6 / 49)));
  assert.equal(v.pass, true);
  assert.ok(Math.abs(v.rssSlopeKiBPerEpoch) < 1e-9);
  assert.ok(Math.abs(v.rssGrowth - 0.03) < 1e-9);
});

test('a change in the live tensor count fails, even early in the run', () => {
  const v = judge(run(1000, () => 200, (e) => (e === 20 ? 51 : 50)));
  assert.equal(v.tensorsFlat, false);
  assert.equal(v.pass, false);
});

test('too short a run cannot pass', () => {
  const v = judge(run(5, () => 200));
  assert.equal(v.pass, false);
});
