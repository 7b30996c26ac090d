// Memory probes for the soak (Linux /proc; elsewhere they return what Node alone can tell).
//
// process.memoryUsage() says how much of RSS is V8's and how many bytes ArrayBuffers hold, but not
// where the rest of the native memory lives. /proc/self/smaps does: every mapping with its resident
// size. glibc's malloc keeps the main thread's heap in `[heap]` and gives every other thread that
// allocates an arena of its own, an anonymous mapping reserved in 64 MiB-aligned blocks of 64 MiB
// (HEAP_MAX_SIZE on 64-bit), so counting those blocks counts arenas without any native code.
import { readFileSync, readdirSync } from 'node:fs';

const KIB = 1024;
const ARENA_BYTES = 64 * 2 ** 20;

function readOrEmpty(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** RSS split (anon/file/shmem, KiB), peak RSS and the thread count from /proc/self/status. */
export function procStatus() {
  const text = readOrEmpty('/proc/self/status');
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return { rssAnonKiB: field('RssAnon'), rssFileKiB: field('RssFile'), rssShmemKiB: field('RssShmem'), hwmKiB: field('VmHWM'), threads: field('Threads') };
}

/** Names of the process's threads (/proc/self/task/N/comm), counted by name: `{ node: 1, 'V8 Worker': 4, … }`. */
export function threadNames() {
  const counts = {};
  let tasks = [];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return counts;
  }
  for (const t of tasks) {
    const name = readOrEmpty(`/proc/self/task/${t}/comm`).trim() || '?';
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/**
 * Every mapping of /proc/self/smaps with its resident size: `{ key, start, size, name, rssKiB }`.
 * `key` (start address and permissions) identifies a mapping between two reads.
 */
export function mappings() {
  const text = readOrEmpty('/proc/self/smaps');
  const out = [];
  let current;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const start = BigInt(`0x${head[1]}`);
      const end = BigInt(`0x${head[2]}`);
      current = { key: `${head[1]} ${head[3]}`, start, size: Number(end - start), perms: head[3], name: head[4] || '[anon]', rssKiB: 0 };
      out.push(current);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current) current.rssKiB = Number(rss[1]);
  }
  return out;
}

/**
 * Resident KiB by kind of mapping: `[heap]` (glibc's main arena), `arenas` (other threads' glibc
 * arenas: anonymous mappings inside 64 MiB-aligned 64 MiB reservations, with their count),
 * `anonOther` (V8's heap, the WASM memory, mmap-ed large allocations, thread stacks), `file`
 * (code and data of the binary and shared libraries) and `stack`.
 */
export function rssByKind(maps = mappings()) {
  const kinds = { heapKiB: 0, arenasKiB: 0, arenaCount: 0, anonOtherKiB: 0, fileKiB: 0, stackKiB: 0 };
  // A non-main arena is a 64 MiB-aligned reservation whose front part is read-write and whose
  // rest is PROT_NONE; both halves are anonymous and together exactly 64 MiB.
  const arenaStarts = new Set();
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (m.name !== '[anon]' || m.start % BigInt(ARENA_BYTES) !== 0n) continue;
    const next = maps[i + 1];
    const whole = m.size === ARENA_BYTES || (next && next.name === '[anon]' && next.start === m.start + BigInt(m.size) && next.perms.startsWith('---') && m.size + next.size === ARENA_BYTES);
    if (whole && m.perms.startsWith('rw')) arenaStarts.add(m.start);
  }
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (m.name === '[heap]') kinds.heapKiB += m.rssKiB;
    else if (m.name.startsWith('[stack')) kinds.stackKiB += m.rssKiB;
    else if (m.name === '[anon]' && arenaStarts.has(m.start)) kinds.arenasKiB += m.rssKiB;
    else if (m.name === '[anon]' || m.name.startsWith('[anon:')) kinds.anonOtherKiB += m.rssKiB;
    else kinds.fileKiB += m.rssKiB;
  }
  kinds.arenaCount = arenaStarts.size;
  return kinds;
}

/**
 * Mappings whose resident size changed by at least `minKiB` between two `mappings()` reads (new
 * mappings count from 0, gone ones to 0), largest change first.
 */
export function mappingGrowth(before, after, minKiB = 512) {
  const old = new Map(before.map((m) => [m.key, m]));
  const seen = new Set();
  const changes = [];
  for (const m of after) {
    seen.add(m.key);
    const delta = m.rssKiB - (old.get(m.key)?.rssKiB ?? 0);
    if (Math.abs(delta) >= minKiB) changes.push({ mapping: `${m.key} ${m.name} (${(m.size / 2 ** 20).toFixed(1)} MiB)`, deltaKiB: delta, rssKiB: m.rssKiB });
  }
  for (const m of before) {
    if (!seen.has(m.key) && m.rssKiB >= minKiB) changes.push({ mapping: `${m.key} ${m.name} (gone)`, deltaKiB: -m.rssKiB, rssKiB: 0 });
  }
  return changes.sort((a, b) => Math.abs(b.deltaKiB) - Math.abs(a.deltaKiB));
}

/**
 * Wraps every hook (a function-valued property whose name starts with `on`, or a logger's
 * `log*`/`finalize`) of each object so that the RSS change across each call is added to
 * `totals[label.hook]`: `{ calls, growthKiB, largest: { kib, epoch } }`. Growth only (a call that
 * frees is not credited), so a hook that allocates each time and another that frees do not cancel.
 */
export function wrapHooks(objects, totals, currentEpoch) {
  for (const { label, object } of objects) {
    const names = new Set();
    for (let p = object; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      for (const name of Object.getOwnPropertyNames(p)) names.add(name);
    }
    for (const name of names) {
      if (!/^(on[A-Z]|log[A-Z]|finalize$)/.test(name) || typeof object[name] !== 'function') continue;
      const original = object[name];
      const key = `${label}.${name}`;
      const record = (before) => {
        const kib = Math.max(0, (process.memoryUsage.rss() - before) / KIB);
        const t = (totals[key] ??= { calls: 0, growthKiB: 0, largest: { kib: 0, epoch: -1 } });
        t.calls++;
        t.growthKiB += kib;
        if (kib > t.largest.kib) t.largest = { kib, epoch: currentEpoch() };
      };
      object[name] = function wrapped(...args) {
        const before = process.memoryUsage.rss();
        const result = original.apply(this, args);
        if (result && typeof result.then === 'function') return result.finally(() => record(before));
        record(before);
        return result;
      };
    }
  }
}
