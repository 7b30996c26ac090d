// node --test tools/soak/test/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mappingGrowth, mappings, rssByKind, wrapHooks } from '../memory.mjs';

const MiB = 2 ** 20;
/** A mapping as `mappings()` returns it. */
function map(start, size, perms, name, rssKiB) {
  return { key: `${start.toString(16)} ${perms}`, start, size, perms, name, rssKiB };
}

test('rssByKind counts a 64 MiB-aligned read-write + PROT_NONE pair as a glibc arena, not other anonymous memory', () => {
  const base = 0x7f0000000000n; // 64 MiB-aligned
  const maps = [
    map(0x55000000n, 68 * MiB, 'rw-p', '[heap]', 68 * 1024),
    map(base, 3 * MiB, 'rw-p', '[anon]', 2048),
    map(base + BigInt(3 * MiB), 61 * MiB, '---p', '[anon]', 0),
    // Same alignment but followed by a 10 GiB reservation (a WASM memory): not an arena.
    map(base + BigInt(64 * MiB), 19 * MiB, 'rw-p', '[anon]', 16 * 1024),
    map(base + BigInt(83 * MiB), 10 * 1024 * MiB, '---p', '[anon]', 0),
    map(0x1000n, 2 * MiB, 'r-xp', '/usr/lib/libdnnl.so', 5000),
    map(0x7ffd0000n, 132 * 1024, 'rw-p', '[stack]', 100),
  ];
  const k = rssByKind(maps);
  assert.equal(k.heapKiB, 68 * 1024);
  assert.equal(k.arenaCount, 1);
  assert.equal(k.arenasKiB, 2048);
  assert.equal(k.anonOtherKiB, 16 * 1024);
  assert.equal(k.fileKiB, 5000);
  assert.equal(k.stackKiB, 100);
});

test('mappingGrowth reports grown, new and gone mappings above the threshold, largest first', () => {
  const a = [map(0x1000n, MiB, 'rw-p', '[anon]', 100), map(0x2000n, MiB, 'rw-p', '[anon]', 900), map(0x3000n, MiB, 'rw-p', '[anon]', 50)];
  const b = [map(0x1000n, MiB, 'rw-p', '[anon]', 2100), map(0x3000n, MiB, 'rw-p', '[anon]', 60), map(0x4000n, MiB, 'rw-p', '[anon]', 700)];
  const g = mappingGrowth(a, b, 512);
  assert.deepEqual(g.map((x) => x.deltaKiB), [2000, -900, 700]);
  assert.match(g[1].mapping, /gone/);
});

test('mappings() reads this process from /proc/self/smaps with resident sizes', () => {
  const maps = mappings();
  assert.ok(maps.length > 10);
  assert.ok(maps.some((m) => m.name === '[stack]' && m.rssKiB > 0));
});

test('wrapHooks credits RSS growth to the hook that made it, for sync and async hooks', async () => {
  const keep = [];
  const cb = {
    onTrainBatchEnd() {
      // 8 MiB touched: resident, so RSS grows inside this hook.
      const b = Buffer.alloc(8 * MiB, 1);
      keep.push(b);
    },
    async onValidationEnd() {
      return 42;
    },
    helper() {},
  };
  const totals = {};
  wrapHooks([{ label: 'Fake', object: cb }], totals, () => 7);
  cb.onTrainBatchEnd();
  assert.equal(await cb.onValidationEnd(), 42);
  assert.equal(totals['Fake.onTrainBatchEnd'].calls, 1);
  assert.ok(totals['Fake.onTrainBatchEnd'].growthKiB >= 4 * 1024, `growth ${totals['Fake.onTrainBatchEnd'].growthKiB}`);
  assert.equal(totals['Fake.onTrainBatchEnd'].largest.epoch, 7);
  assert.equal(totals['Fake.onValidationEnd'].calls, 1);
  assert.equal(totals['Fake.helper'], undefined);
});
