#!/usr/bin/env node
// Checks that each publishable package declares exactly what it imports. Run after the build:
// what a user installs is dist/ (and the other shipped scripts), so that is what is read.
//
//   undeclared: a bare import in the shipped JavaScript or declarations that is not in
//               dependencies, peerDependencies or optionalDependencies (a user's install breaks)
//   unused:     a declared dependency that nothing shipped imports (a user installs it for nothing);
//               optional peers and optional dependencies, loaded through a variable specifier,
//               count as used when the bundle names them in a string
//   unlisted:   a bare import in src/ or test/ that package.json lists nowhere, devDependencies
//               included (bundled packages belong in devDependencies: they are build inputs)
//
//   node tools/scripts/check-deps.mjs [package-dir …]     (default: every workspace package)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const builtins = new Set(builtinModules);
const rootDevDependencies = Object.keys(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies ?? {});

/** `@scope/name/sub/path` → `@scope/name`, `name/sub` → `name`; undefined for relative paths, URLs and builtins. */
export function packageOf(spec) {
  if (!/^(?:@[\w.-]+\/)?[\w.-]+(?:\/\S*)?$/.test(spec) || spec.startsWith('.') || /^[a-z]+:/.test(spec)) return undefined;
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  if (builtins.has(name)) return undefined;
  return name;
}

// import … from 'x' · export … from 'x' · import 'x' · import('x') · require('x') · require.resolve('x')
// · /// <reference types="x" />
const REFERENCE_TYPES = /\/\/\/\s*<reference\s+types\s*=\s*(['"])([^'"]+)\1/g;
const IMPORT_PATTERNS = [
  /\b(?:import|export)\s[^'"`;]*?\bfrom\s*(['"])([^'"]+)\1/g,
  /\bimport\s*(['"])([^'"]+)\1/g,
  /\b(?:import|require|__require|require\.resolve|resolve)\s*\(\s*(['"])([^'"]+)\1\s*\)/g,
  REFERENCE_TYPES,
];

/** The packages a piece of JavaScript or TypeScript imports. Comments are stripped first, so doc examples do not count. */
export function importsOf(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:\\'"/])\/\/(?!\/).*$/gm, '$1');
  const found = new Set();
  for (const re of IMPORT_PATTERNS) {
    for (const m of code.matchAll(re)) {
      const name = packageOf(m[2]);
      // `/// <reference types="long" />` is satisfied by @types/long.
      if (name) found.add(re === REFERENCE_TYPES && !name.startsWith('@types/') ? `@types/${name.replace(/^@(.*)\/(.*)$/, '$1__$2')}` : name);
    }
  }
  return found;
}

function walk(dir, keep) {
  if (!existsSync(dir)) return [];
  if (statSync(dir).isFile()) return keep(dir) ? [dir] : [];
  return readdirSync(dir, { recursive: true }).map((f) => path.join(dir, String(f))).filter((f) => statSync(f).isFile() && keep(f));
}

const isCode = (f) => /\.(?:[cm]?js|d\.[cm]?ts)$/.test(f);
const isSource = (f) => /\.(?:[cm]?tsx?|mjs)$/.test(f) && !/\.d\.[cm]?ts$/.test(f);

/** Problems with one package directory: a list of sentences, empty when all is well. */
export function checkPackage(dir) {
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const deps = Object.keys(pkg.dependencies ?? {});
  const optional = new Set([
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
  const declared = new Set([...deps, ...optional]);
  // The repository root's devDependencies (vitest, esbuild, typescript) serve every package's tests.
  const everywhere = new Set([...declared, ...Object.keys(pkg.devDependencies ?? {}), ...rootDevDependencies]);
  const problems = [];

  // What ships: the `files` entries (dist/, bin/, native/ …), not what npm excludes from them.
  const shipped = (pkg.files ?? ['dist']).filter((f) => !f.startsWith('!')).flatMap((f) => walk(path.join(dir, f), isCode));
  if (!shipped.some((f) => f.includes(`${path.sep}dist${path.sep}`))) problems.push('no dist/ to check: build the package first');
  const used = new Set();
  let bundleText = '';
  for (const f of shipped) {
    const text = readFileSync(f, 'utf8');
    for (const name of importsOf(text)) used.add(name);
    if (!/\.d\.[cm]?ts$/.test(f)) bundleText += text;
  }
  used.delete(pkg.name);
  for (const name of [...used].sort()) {
    if (!declared.has(name)) problems.push(`imports ${name} but does not declare it in dependencies`);
  }
  for (const name of [...declared].sort()) {
    if (used.has(name)) continue;
    const named = bundleText.includes(`'${name}'`) || bundleText.includes(`"${name}"`) || bundleText.includes(`"${name}/`) || bundleText.includes(`'${name}/`);
    if (optional.has(name) && named) continue;
    problems.push(`declares ${name} but nothing it ships imports it`);
  }

  for (const f of [...walk(path.join(dir, 'src'), isSource), ...walk(path.join(dir, 'test'), isSource)]) {
    for (const name of importsOf(readFileSync(f, 'utf8'))) {
      if (name !== pkg.name && !everywhere.has(name)) problems.push(`${path.relative(dir, f)} imports ${name}, which package.json does not list`);
    }
  }
  return problems;
}

function workspaceDirs() {
  const rootPkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  return rootPkg.workspaces
    .map((w) => path.join(root, w))
    .filter((d) => !JSON.parse(readFileSync(path.join(d, 'package.json'), 'utf8')).private);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dirs = process.argv.length > 2 ? process.argv.slice(2).map((d) => path.resolve(d)) : workspaceDirs();
  let failed = 0;
  for (const dir of dirs) {
    const name = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name;
    const problems = checkPackage(dir);
    for (const p of problems) console.error(`${name}: ${p}`);
    if (problems.length) failed++;
  }
  if (failed) {
    console.error(`check-deps: ${failed} of ${dirs.length} packages declare dependencies that do not match what they import`);
    process.exit(1);
  }
  console.log(`check-deps: ${dirs.length} packages declare exactly what they import`);
}
