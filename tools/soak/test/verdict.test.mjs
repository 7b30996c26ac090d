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

test('a one-time warm-up step followed by a flat tail passes, and the step stays visible', () => {
  // +16 MiB at epoch 3 (V8's young generation reaching its cap), then flat with page-sized noise.
  const v = judge(run(1000, (e) => 190 + (e >= 3 ? 16 : 0) + ((e * 7919) % 5) * 0.25));
  assert.equal(v.pass, true);
  assert.equal(v.warmupEpochs, 100);
  assert.ok(v.rssGrowth < 0.01, `growth ${v.rssGrowth}`);
  assert.ok(v.rssGrowthFromEpoch1 > 0.08, 'growth against epoch 1 is reported, not hidden');
  assert.ok(Math.abs(v.rssSlopeKiBPerEpoch) < 1);
});

test('a step after the warm-up larger than 5% fails', () => {
  const v = judge(run(1000, (e) => (e >= 500 ? 212 : 200)));
  assert.equal(v.pass, false);
  assert.ok(Math.abs(v.rssGrowth - 0.06) < 1e-9);
});

test('a slow leak that stays under 5% fails on its slope', () => {
  // 8 KiB per epoch: +3.5% over 900 epochs, under the 5% line, but a leak.
  const v = judge(run(1000, (e) => 200 + (e * 8) / 1024));
  assert.ok(v.rssGrowth < 0.05, `growth ${v.rssGrowth}`);
  assert.ok(Math.abs(v.rssSlopeKiBPerEpoch - 8) < 1e-6);
  assert.equal(v.pass, false);
});

test('a change in the live tensor count fails, even inside the warm-up', () => {
  const v = judge(run(1000, () => 200, (e) => (e === 20 ? 51 : 50)));
  assert.equal(v.tensorsFlat, false);
  assert.equal(v.pass, false);
});

test('too short a run cannot pass', () => {
  const v = judge(run(5, () => 200));
  assert.equal(v.pass, false);
});
