#!/usr/bin/env node
// Builds the API reference with TypeDoc (typedoc.json → docs-api/) and fails on any TypeDoc error
// or warning except undocumented exports already listed in tools/scripts/undocumented-exports.txt.
// That list is the documentation still owed: a new export without a doc comment fails, and so does
// a listed one that has been documented since (remove its line), so the list only shrinks.
//
//   node tools/scripts/api-docs.mjs            check (CI)
//   node tools/scripts/api-docs.mjs --update   rewrite the list from the current warnings
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const listFile = path.join(root, 'tools', 'scripts', 'undocumented-exports.txt');
const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
const r = spawnSync(process.execPath, [typedoc, '--logLevel', 'Warn'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim()).filter(Boolean);

const undocumented = new Set();
const other = [];
for (const line of lines) {
  const m = line.match(/^\[warning\] (.+), defined in (\S+), does not have any documentation$/);
  if (m) undocumented.add(`${m[2]} ${m[1]}`);
  else if (/^\[(warning|error)\]/.test(line) && !/^\[(warning|error)\] Found \d+ errors? and \d+ warnings?$/.test(line)) other.push(line);
}

if (process.argv.includes('--update')) {
  writeFileSync(listFile, [...undocumented].sort().join('\n') + '\n');
  console.log(`api-docs: listed ${undocumented.size} undocumented exports in ${path.relative(root, listFile)}`);
  process.exit(0);
}

const owed = new Set(readFileSync(listFile, 'utf8').split('\n').filter(Boolean));
const added = [...undocumented].filter((u) => !owed.has(u)).sort();
const done = [...owed].filter((u) => !undocumented.has(u)).sort();
for (const line of other) console.error(`api-docs: ${line}`);
for (const u of added) console.error(`api-docs: undocumented export: ${u}`);
for (const u of done) console.error(`api-docs: documented now, remove its line from undocumented-exports.txt: ${u}`);
if (r.status !== 0) console.error(`api-docs: typedoc exited with ${r.status}`);
if (other.length || added.length || done.length || r.status !== 0) process.exit(1);
console.log(`api-docs: reference written to docs-api/; ${owed.size} exports still owe a doc comment (tools/scripts/undocumented-exports.txt)`);
