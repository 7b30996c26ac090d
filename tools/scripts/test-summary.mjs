#!/usr/bin/env node
// Adds up the vitest JSON reports every package's `test` target leaves behind (nx restores them
// from its cache too), lists the failed and the skipped tests (each skip with its reason), and
// prints one closing line: "tests: N passed, N failed, N skipped".
//
//   node tools/scripts/test-summary.mjs                      every package's report
//   node tools/scripts/test-summary.mjs --projects a,b --label avx2
//                                                            only packages/a, packages/b (one CI pass)
//   node tools/scripts/test-summary.mjs --clean              delete the reports, so that a run that
//                                                            stops early cannot be summed with stale ones
//
// Under CI (`CI` set), a skip is itself a failure unless it came through
// tools/testing/require-or-skip.ts with an allowed reason (its report `meta.skipAllowed`): a bare
// `it.skip`/`skipIf` would otherwise pass CI without running what it guards.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { underCi } from '../testing/under-ci.mjs';

const REPORT = '.vitest-report.json';
const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = option('--projects')?.split(',').map((s) => s.replace(/^@kiln\//, ''));
const label = option('--label');
const ci = underCi();

const root = process.cwd();
const packages = [];
for (const group of ['packages', 'apps']) {
  const dir = path.join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir).sort()) {
    const pkgDir = path.join(dir, name);
    if (!existsSync(path.join(pkgDir, 'package.json'))) continue;
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    if (!pkg.scripts?.test || (only && !only.includes(name))) continue;
    packages.push({ id: `${group}/${name}`, dir: pkgDir });
  }
}

if (args.includes('--clean')) {
  for (const p of packages) rmSync(path.join(p.dir, REPORT), { force: true });
  process.exit(0);
}

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
const failures = [];
const skips = [];
for (const p of packages) {
  const file = path.join(p.dir, REPORT);
  if (!existsSync(file)) {
    missing.push(p.id);
    continue;
  }
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    // A run killed part-way (or a full disk) leaves a truncated report: that package failed.
    failed++;
    failures.push(`${p.id} (its report ${path.relative(process.cwd(), file)} is unreadable: ${e.message})`);
    continue;
  }
  let pkgPassed = 0;
  let pkgFailed = 0;
  let pkgSkipped = 0;
  for (const f of r.testResults ?? []) {
    const where = `${p.id}/${path.relative(p.dir, f.name)}`;
    const results = f.assertionResults ?? [];
    for (const t of results) {
      if (t.status === 'passed') pkgPassed++;
      else if (t.status === 'failed') {
        pkgFailed++;
        failures.push(`${where} > ${t.fullName}`);
      } else {
        pkgSkipped++;
        skips.push({ name: `${where} > ${t.fullName}`, reason: t.meta?.skipReason, allowed: t.meta?.skipAllowed });
      }
    }
    // A file that fails to load (a throw at module level) has no failed test to count.
    if (f.status === 'failed' && !results.some((t) => t.status === 'failed')) {
      pkgFailed++;
      failures.push(`${where} (the file failed: ${String(f.message).split('\n')[0]})`);
    }
  }
  passed += pkgPassed;
  failed += pkgFailed;
  skipped += pkgSkipped;
  console.log(`${p.id}: ${pkgPassed} passed, ${pkgFailed} failed, ${pkgSkipped} skipped`);
}

if (missing.length) {
  console.log(`no test report from: ${missing.join(', ')}`);
  failed += missing.length;
}
for (const f of failures) console.log(`failed: ${f}`);
for (const s of skips) console.log(`skipped: ${s.name} — ${s.reason ?? 'no reason recorded (a bare it.skip/skipIf/todo)'}`);
const unexplained = ci ? skips.filter((s) => !s.allowed) : [];
if (unexplained.length) {
  console.log(`${unexplained.length} skipped test(s) are not allowed under CI: skip only through requireOrSkip (tools/testing/require-or-skip.ts), whose allow-list says why`);
}
console.log(`${label ? `[${label}] ` : ''}tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 || passed === 0 || unexplained.length > 0 ? 1 : 0;
