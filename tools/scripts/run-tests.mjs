#!/usr/bin/env node
// Runs the test suites through nx and closes with tools/scripts/test-summary.mjs, which prints the
// summary even when a suite failed (its exit status is the run's).
//
//   node tools/scripts/run-tests.mjs                 every package (npm test)
//   node tools/scripts/run-tests.mjs --pass avx2     the numeric packages again, oneDNN capped to AVX2
//   node tools/scripts/run-tests.mjs --pass no-dnnl  the numeric packages again, oneDNN off (WASM kernels)
//
// The two passes check that the numeric tests hold on the kernels other CPUs run: oneDNN picks its
// kernels by the CPU's instruction sets, so a machine with AVX-512 never runs the AVX2 ones unless
// capped. They reuse the packages' builds (build first: `npm run build` or `npm test`), and their
// environment is part of nx's cache key for `test` (nx.json), so nx never replays one pass's
// results for another.
import { spawnSync } from 'node:child_process';

/** The packages whose results depend on the CPU kernels. */
const NUMERIC = ['backend-cpu', 'layers', 'optim', 'zoo', 'trainer', 'data'];

const PASSES = {
  avx2: {
    what: 'oneDNN capped to AVX2',
    // oneDNN ≥ 2.5 reads ONEDNN_MAX_CPU_ISA, older ones DNNL_MAX_CPU_ISA; both are set.
    env: { DNNL_MAX_CPU_ISA: 'AVX2', ONEDNN_MAX_CPU_ISA: 'AVX2' },
  },
  'no-dnnl': {
    what: 'oneDNN off (KILN_DNNL=0)',
    // Nothing requires the addon in this pass: its tests skip as allowed ('dnnl-off').
    env: { KILN_DNNL: '0', KILN_REQUIRE_DNNL: '' },
  },
};

const args = process.argv.slice(2);
const passName = args.includes('--pass') ? args[args.indexOf('--pass') + 1] : undefined;
const pass = passName === undefined ? undefined : PASSES[passName];
if (passName !== undefined && !pass) {
  console.error(`run-tests: unknown --pass '${passName}' (expected ${Object.keys(PASSES).join(' or ')})`);
  process.exit(2);
}

const env = { ...process.env, ...pass?.env };
const projects = pass ? NUMERIC : undefined;
const summaryArgs = projects ? ['--projects', projects.join(','), '--label', passName] : [];
const run = (cmd, argv) => spawnSync(cmd, argv, { stdio: 'inherit', env }).status ?? 1;

if (pass) console.log(`run-tests: ${NUMERIC.join(', ')} with ${pass.what}`);
// No report may survive from an earlier run: a package that does not run must show up as missing.
run(process.execPath, ['tools/scripts/test-summary.mjs', '--clean', ...summaryArgs]);
const nxArgs = ['nx', 'run-many', '-t', 'test', '--outputStyle=static'];
if (projects) nxArgs.push(`--projects=${projects.map((p) => `@kiln/${p}`).join(',')}`, '--excludeTaskDependencies');
const tests = run('npx', nxArgs);
const summary = run(process.execPath, ['tools/scripts/test-summary.mjs', ...summaryArgs]);
process.exitCode = tests || summary;
