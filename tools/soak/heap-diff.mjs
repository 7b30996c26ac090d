#!/usr/bin/env node
// Compares two V8 heap snapshots of one process (from `run.mjs --heap-snapshots`): total self size
// and count per kind of node (type and constructor name; strings together), the largest growth
// first. Growth in `object Object` or strings that keeps rising between later snapshots is state
// something keeps per step or epoch; growth only in `code` is the JIT still tiering up.
//
//   node tools/soak/heap-diff.mjs DIR/heap-40.heapsnapshot DIR/heap-160.heapsnapshot [TOP]
import { readFileSync } from 'node:fs';

function byKind(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const kinds = new Map();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const t = types[s.nodes[i + type]];
    const n = t.includes('string') ? '(strings)' : s.strings[s.nodes[i + name]].slice(0, 60);
    const k = kinds.get(`${t} ${n}`) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += s.nodes[i + size];
    kinds.set(`${t} ${n}`, k);
  }
  return kinds;
}

const [a, b, top = '25'] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: node tools/soak/heap-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [TOP]');
  process.exit(2);
}
const before = byKind(a);
const rows = [...byKind(b)].map(([kind, k]) => ({ kind, bytes: k.bytes - (before.get(kind)?.bytes ?? 0), count: k.count - (before.get(kind)?.count ?? 0) }));
rows.sort((x, y) => y.bytes - x.bytes);
console.log('growth (bytes)  count  kind');
for (const r of rows.slice(0, Number(top))) console.log(`${String(r.bytes).padStart(14)}  ${String(r.count).padStart(5)}  ${r.kind}`);
