#!/usr/bin/env node
// The consumer test: Kiln as a user meets it after `npm install`, outside this repository.
//
//   node tools/consumer/run.mjs [--keep]      (after `npm run build`; CI runs it from .ci/run)
//
// 1. `npm pack` every publishable package; check what each tarball holds (LICENSE, no prebuilt
//    native addon, no source-map comments pointing at files that are not shipped); publint and
//    @arethetypeswrong/cli must report nothing.
// 2. A project in the temp directory installs every tarball (backend-cpu's install script allowed,
//    so it builds the oneDNN addon here) and runs project/: a training script with a custom
//    callback (ESM), fine-tuning from its checkpoint (CommonJS), a data-only script, the `kiln`
//    command, and TypeScript consumers type-checked without skipLibCheck under moduleResolution
//    node16, nodenext and bundler, the node16 one then compiled and run.
// 3. A second project installs @kiln/core and @kiln/data alone: the first batch must fail with
//    the error naming the backend package. Then @kiln/backend-cpu with npm's default of not running
//    dependencies' install scripts: the backend must say, once, that oneDNN is off, why, and how to
//    turn it on; and again after a build that found no compiler.
// 4. The scripts run again on the oldest Node the packages declare in `engines` (a Node binary
//    from npm's node-linux-<arch> package, cached in ~/.cache/kiln).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const projectFiles = path.join(root, 'tools', 'consumer', 'project');
const keep = process.argv.includes('--keep');
const work = mkdtempSync(path.join(tmpdir(), 'kiln-consumer-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const failures = [];
const started = Date.now();

function log(line) {
  console.log(`consumer [${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}`);
}

function fail(what) {
  failures.push(what);
  console.error(`consumer: FAIL ${what}`);
}

/** Runs a command; returns { status, stdout, stderr }; logs the output when it fails. */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options, env: { ...process.env, ...options.env } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command that must succeed; records a failure (with its output) when it does not. */
function expectOk(label, cmd, args, options = {}) {
  const t = Date.now();
  const r = run(cmd, args, options);
  if (r.status !== 0) {
    fail(`${label}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  } else {
    const last = r.stdout.trim().split('\n').pop() ?? '';
    log(`${label}: ok (${((Date.now() - t) / 1000).toFixed(1)} s)${last ? ` — ${last}` : ''}`);
  }
  return r;
}

const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));
const rootPkg = readJson(path.join(root, 'package.json'));
const packages = rootPkg.workspaces
  .map((w) => ({ dir: path.join(root, w), pkg: readJson(path.join(root, w, 'package.json')) }))
  .filter(({ pkg }) => !pkg.private);

// ── 1. Pack and inspect ──────────────────────────────────────────────────────────────────────────
const tarballs = path.join(work, 'tarballs');
mkdirSync(tarballs);
const packed = JSON.parse(
  execFileSync(npm, ['pack', '--json', '--pack-destination', tarballs, ...packages.flatMap(({ dir }) => ['-w', path.relative(root, dir)])], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);
const tarballOf = Object.fromEntries(packed.map((p) => [p.name, path.join(tarballs, p.filename)]));
log(`packed ${packed.length} packages into ${tarballs}`);

for (const p of packed) {
  const files = p.files.map((f) => f.path);
  if (!files.includes('LICENSE')) fail(`${p.name}: the tarball has no LICENSE`);
  const native = files.filter((f) => f.endsWith('.node'));
  if (native.length) fail(`${p.name}: ships prebuilt native code: ${native.join(', ')}`);
  const maps = files.filter((f) => f.endsWith('.map'));
  if (maps.length) fail(`${p.name}: ships source maps: ${maps.join(', ')}`);
}

const extracted = path.join(work, 'extracted');
for (const [name, file] of Object.entries(tarballOf)) {
  const dir = path.join(extracted, name);
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['xzf', file, '-C', dir]);
  for (const f of readdirSync(dir, { recursive: true })) {
    const full = path.join(dir, String(f));
    if (!/\.(?:[cm]?js|d\.[cm]?ts)$/.test(full) || !statSync(full).isFile()) continue;
    const comment = readFileSync(full, 'utf8').match(/^\/\/# sourceMappingURL=(.*)$/m);
    if (comment && !existsSync(path.resolve(path.dirname(full), comment[1]))) {
      fail(`${name}: ${path.relative(path.join(dir, 'package'), full)} points at a source map that is not shipped (${comment[1]})`);
    }
  }
}

const attw = path.join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js');
for (const [name, file] of Object.entries(tarballOf)) {
  // The extracted tarball is exactly what is published, so publint reads it as it is.
  const { messages, pkg } = await publint({ pkgDir: path.join(extracted, name, 'package'), pack: false, level: 'suggestion', strict: true });
  for (const m of messages) fail(`${name}: publint ${m.type}: ${formatMessage(m, pkg, { color: false })}`);
  const r = run(process.execPath, [attw, file, '--format', 'ascii', '--no-color', '--no-emoji']);
  if (r.status !== 0) fail(`${name}: @arethetypeswrong/cli reports problems:\n${r.stdout}${r.stderr}`);
}
log(`publint and @arethetypeswrong/cli on ${packed.length} tarballs: ${failures.length ? 'problems above' : 'nothing to report'}`);

// ── 2. A project with every package ──────────────────────────────────────────────────────────────
const kilnDeps = Object.fromEntries(Object.entries(tarballOf).map(([name, file]) => [name, `file:${file}`]));

function makeProject(name, dependencies, extra = {}) {
  const dir = path.join(work, name);
  cpSync(projectFiles, dir, { recursive: true });
  // `overrides` makes every @kiln/* dependency of a package resolve to the local tarball too,
  // never to a registry.
  const kiln = Object.fromEntries(Object.entries(dependencies).filter(([n]) => n.startsWith('@kiln/')));
  const manifest = { name: `kiln-consumer-${name}`, private: true, dependencies, overrides: kiln, ...extra };
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function install(dir, extraArgs = []) {
  return expectOk(`npm install in ${path.basename(dir)} ${extraArgs.join(' ')}`.trim(), npm, ['install', '--no-audit', '--no-fund', '--no-package-lock', ...extraArgs], { cwd: dir });
}

// npm 11 runs a dependency's install script only when the project allows it (`allowScripts`, as
// `npm install-scripts approve @kiln/backend-cpu` writes it); users who want the oneDNN kernels
// built on install do the same. Older npm runs it anyway.
const full = makeProject('full', { ...kilnDeps, '@types/node': rootPkg.devDependencies['@types/node'] }, { allowScripts: { '@kiln/backend-cpu': true } });
install(full, ['--foreground-scripts']);
const addon = path.join(full, 'node_modules', '@kiln', 'backend-cpu', 'dist', 'native', 'kiln_dnnl.node');
const canBuild = existsSync('/usr/include/dnnl.hpp');
if (canBuild && !existsSync(addon)) fail(`@kiln/backend-cpu's install did not build ${addon} although libdnnl-dev is installed`);
log(`oneDNN addon after install: ${existsSync(addon) ? 'built on this machine' : 'not built (no libdnnl-dev)'}`);

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const ckpt = path.join(work, 'checkpoints');
function consumerRuns(node, label) {
  expectOk(`${label} train.mjs (ESM, custom callback)`, node, ['train.mjs', ckpt], { cwd: full, env: { KILN_EXPECT_DNNL: existsSync(addon) ? '1' : '0' } });
  expectOk(`${label} fine-tune.cjs (CommonJS, from the checkpoint)`, node, ['fine-tune.cjs', ckpt], { cwd: full });
  expectOk(`${label} data.mjs with-backend`, node, ['data.mjs', 'with-backend'], { cwd: full });
  expectOk(`${label} out-node16/train.mjs (compiled TypeScript)`, node, [path.join('out-node16', 'train.mjs')], { cwd: full });
  expectOk(`${label} kiln --help`, node, [path.join('node_modules', '@kiln', 'cli', 'bin', 'kiln.mjs'), '--help'], { cwd: full });
}

for (const config of ['node16', 'nodenext', 'bundler']) {
  expectOk(`tsc -p tsconfig.${config}.json (skipLibCheck false)`, process.execPath, [tsc, '-p', `tsconfig.${config}.json`], { cwd: full });
}
cpSync(path.join(full, 'synthetic.cjs'), path.join(full, 'out-node16', 'synthetic.cjs'));
consumerRuns(process.execPath, `node ${process.version}`);

// ── 3. Data alone, then the backend without its install script ───────────────────────────────────
const partial = makeProject('partial', { '@kiln/core': kilnDeps['@kiln/core'], '@kiln/data': kilnDeps['@kiln/data'] });
install(partial);
expectOk('data.mjs without-backend (no backend package installed)', process.execPath, ['data.mjs', 'without-backend'], { cwd: partial });

const withoutScripts = makeProject('no-addon', { '@kiln/core': kilnDeps['@kiln/core'], '@kiln/data': kilnDeps['@kiln/data'], '@kiln/backend-cpu': kilnDeps['@kiln/backend-cpu'] });
install(withoutScripts, ['--ignore-scripts']);
function expectNotice(label, reason) {
  const r = expectOk(label, process.execPath, ['data.mjs', 'with-backend'], { cwd: withoutScripts, env: { KILN_DNNL: '' } });
  const lines = r.stderr.split('\n').filter((l) => l.includes('oneDNN'));
  if (lines.length !== 1) fail(`${label}: expected one line about oneDNN on stderr, got ${lines.length}:\n${r.stderr}`);
  else if (!lines[0].includes(reason) || !lines[0].includes('npx kiln-build-dnnl')) fail(`${label}: the oneDNN line lacks "${reason}" or the command: ${lines[0]}`);
  else log(`  stderr: ${lines[0]}`);
}
expectNotice('backend-cpu installed with scripts blocked', 'install script did not run');
const build = run(process.execPath, [path.join('node_modules', '@kiln', 'backend-cpu', 'native', 'build.mjs')], { cwd: withoutScripts, env: { CXX: 'kiln-no-such-compiler', KILN_REQUIRE_DNNL: '0' } });
if (build.status !== 0) fail(`kiln-build-dnnl without a compiler must exit 0 with a note; exit ${build.status}: ${build.stderr}`);
expectNotice('backend-cpu after a build without a compiler', 'no C++ compiler');

// ── 4. The oldest Node the packages support ──────────────────────────────────────────────────────
const engines = [...new Set(packages.map(({ pkg }) => pkg.engines?.node))];
if (engines.length !== 1 || !/^>=\d+\.\d+\.\d+$/.test(engines[0] ?? '')) {
  fail(`every package must declare the same engines.node ">=X.Y.Z"; found ${engines.join(' | ')}`);
} else {
  const oldest = engines[0].slice(2);
  const node = oldestNode(oldest);
  const v = run(node, ['--version']).stdout.trim();
  if (v !== `v${oldest}`) fail(`the Node binary for ${oldest} says ${v}`);
  consumerRuns(node, `node ${v}`);
  expectOk(`node ${v} data.mjs without-backend`, node, ['data.mjs', 'without-backend'], { cwd: partial });
}

/** A Node binary of exactly `version`, from npm's node-linux-<arch> package, cached between runs. */
function oldestNode(version) {
  const cache = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'kiln', `node-${version}`);
  const bin = path.join(cache, 'package', 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    const pkg = `node-${process.platform}-${process.arch}@${version}`;
    const out = execFileSync(npm, ['pack', pkg, '--json', '--pack-destination', cache], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const file = path.join(cache, JSON.parse(out)[0].filename);
    execFileSync('tar', ['xzf', file, '-C', cache]);
    rmSync(file);
  }
  return bin;
}

if (!keep) rmSync(work, { recursive: true, force: true });
else log(`kept ${work}`);
if (failures.length) {
  console.error(`consumer: ${failures.length} failure(s)`);
  process.exit(1);
}
log('every consumer check passed');
