#!/usr/bin/env node
// Builds the package in the current directory: an ESM and a CJS bundle per entry (esbuild) and
// declaration files (tsc). Bare imports stay external unless the package lists them under
// `kiln.bundle` in its package.json; `kiln.alias` rewrites a bare import to another external one
// (backends use it so the tfjs packages they embed share @kiln/core's single engine).
//
// What a package ships (its `exports` map points at each):
//   dist/<entry>.js          ESM for browsers and bundlers (platform `neutral`) or for Node (`node`)
//   dist/node/<entry>.js     neutral packages that set `kiln.nodeBuild`: the same ESM with Node's
//                            `require` defined, under the `node` condition
//   dist/<entry>.cjs         CommonJS
//   dist/<browser entry>.js  `kiln.browserEntries` of a Node package: ESM for browsers only (its
//                            `browser` export condition), built without the Node banner and with
//                            each `kiln.browserReplace` source file (a Node host adapter) swapped for
//                            its browser twin
//   dist/types/*.d.ts|.d.cts declarations for ESM and for CommonJS consumers
// plus the repository's LICENSE. No source maps: the bundles are not minified, and a map whose
// sources are not shipped helps nobody.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, existsSync, copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const cwd = process.cwd();
const pkg = JSON.parse(readFileSync(path.join(cwd, 'package.json'), 'utf8'));
const cfg = pkg.kiln ?? {};
const entries = cfg.entries ?? { index: 'src/index.ts' };
const bundled = cfg.bundle ?? [];
const alias = cfg.alias ?? {};
const platform = cfg.platform ?? 'neutral';
// Relative imports that must stay separate files (e.g. core's embedded tfjs-core, shared by every entry).
const rewrite = cfg.rewrite ?? {};

const matches = (spec, name) => spec === name || spec.startsWith(name + '/');

// tfjs-core's Node platform layer `require`s node-fetch, but only where there is no global fetch:
// Node before 18. Kiln supports newer Node only, so the bundle gets a stub that says so instead of
// an import of a package nobody installs.
const NODE_FETCH_STUB = "throw new Error('Kiln needs a global fetch (Node 18 or newer); node-fetch is not used');";

const externals = {
  name: 'kiln-externals',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (rewrite[args.path]) return { path: rewrite[args.path], external: true };
      if (args.path === 'node-fetch') return { path: 'node-fetch', namespace: 'kiln-stub' };
      for (const [from, to] of Object.entries(alias)) {
        if (matches(args.path, from)) return { path: to, external: true };
      }
      if (args.path.startsWith('.') || path.isAbsolute(args.path)) return undefined;
      if (bundled.some((name) => matches(args.path, name))) return undefined;
      return { path: args.path, external: true };
    });
    b.onLoad({ filter: /.*/, namespace: 'kiln-stub' }, () => ({ contents: NODE_FETCH_STUB, loader: 'js' }));
  },
};

rmSync(path.join(cwd, 'dist'), { recursive: true, force: true });

const common = {
  entryPoints: entries,
  bundle: true,
  outdir: 'dist',
  platform,
  target: 'es2022',
  sourcemap: false,
  logLevel: 'warning',
  plugins: [externals],
  mainFields: ['module', 'main'],
  conditions: ['module'],
  legalComments: 'none',
  define: cfg.define ?? {},
};

// ESM bundles of CommonJS code (tfjs-core's platform layer, emscripten glue) use `require`,
// `__filename` and `__dirname` in Node. A Node build imports them from Node's own modules, which
// works on every Node Kiln supports. A neutral build must stay importable by browser bundlers, so
// it reaches them through `process.getBuiltinModule` where that exists (Node 20.16+, Deno, Bun) and
// leaves them undefined, harmlessly, in browsers; in Node, packages whose neutral bundle needs them
// also ship the Node build under the `node` export condition (`kiln.nodeBuild`).
const nodeBanner = [
  "import { createRequire as __kilnCreateRequire } from 'node:module';",
  "import { fileURLToPath as __kilnFileURLToPath } from 'node:url';",
  "import { dirname as __kilnDirname } from 'node:path';",
  'const require = __kilnCreateRequire(import.meta.url);',
  'const __filename = __kilnFileURLToPath(import.meta.url);',
  'const __dirname = __kilnDirname(__filename);',
  '',
].join('\n');
const neutralBanner = [
  "const require = globalThis.process?.getBuiltinModule?.('module')?.createRequire(import.meta.url);",
  "const __filename = globalThis.process?.getBuiltinModule?.('url')?.fileURLToPath(import.meta.url);",
  "const __dirname = __filename && globalThis.process.getBuiltinModule('path').dirname(__filename);",
  '',
].join('\n');
const shebang = cfg.banner ?? '';

const builds = [
  build({ ...common, format: 'esm', outExtension: { '.js': '.js' }, banner: { js: shebang + (platform === 'node' ? nodeBanner : neutralBanner) } }),
  build({ ...common, format: 'cjs', outExtension: { '.js': '.cjs' }, banner: { js: shebang } }),
];
// Entries for browsers only (a Node package's `browser` export condition): ESM, browser platform,
// no Node banner, so bundlers never meet a `node:` import.
const browserEntries = cfg.browserEntries ?? {};
// `kiln.browserReplace` maps source files to the files that replace them in that build
// ({ "src/host/node.ts": "src/host/browser.ts" }): imports of the first, however spelled, load the second.
const replaced = new Map(Object.entries(cfg.browserReplace ?? {}).map(([from, to]) => [path.resolve(cwd, from), path.resolve(cwd, to)]));
const browserReplace = {
  name: 'kiln-browser-replace',
  setup(b) {
    b.onResolve({ filter: /^\./ }, (args) => {
      const target = path.resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
      return replaced.has(target) ? { path: replaced.get(target) } : undefined;
    });
  },
};
if (Object.keys(browserEntries).length > 0) {
  builds.push(build({ ...common, plugins: [browserReplace, externals], entryPoints: browserEntries, platform: 'browser', format: 'esm', outExtension: { '.js': '.js' }, banner: { js: '' } }));
}
if (cfg.nodeBuild) {
  if (platform !== 'neutral') throw new Error(`${pkg.name}: kiln.nodeBuild only makes sense with platform "neutral"`);
  builds.push(build({ ...common, platform: 'node', outdir: 'dist/node', format: 'esm', banner: { js: shebang + nodeBanner } }));
}
await Promise.all(builds);

// A neutral ESM bundle that calls `require` works in Node only through the Node build; refuse to
// ship one without it (on Node before 20.16 it would fail with "Dynamic require of … is not supported").
if (platform === 'neutral' && !cfg.nodeBuild) {
  for (const name of Object.keys(entries)) {
    if (readFileSync(path.join(cwd, 'dist', `${name}.js`), 'utf8').includes('__require(')) {
      throw new Error(`${pkg.name}: dist/${name}.js calls require(); set "kiln": { "nodeBuild": true } and add the "node" condition to its exports`);
    }
  }
}

// Declarations: tsc from the workspace root's node_modules.
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const tsconfig = existsSync(path.join(cwd, 'tsconfig.build.json')) ? 'tsconfig.build.json' : 'tsconfig.json';
execFileSync(process.execPath, [tsc, '-p', tsconfig, '--emitDeclarationOnly', '--declaration', '--declarationMap', 'false', '--outDir', 'dist/types', '--rootDir', 'src', '--noEmit', 'false'], {
  stdio: 'inherit',
  cwd,
});

// The package is `"type": "module"`, so TypeScript reads every `.d.ts` as ESM; CommonJS consumers
// (moduleResolution node16/nodenext) need declarations that say CommonJS, or every import of the
// package fails with TS1479. Each `.d.ts` gets a `.d.cts` twin whose relative imports name the twins.
// tsc keeps side-effect imports (`import '@tensorflow/tfjs-backend-cpu/dist/base.js'`) in
// declarations. Those of bundled packages would send a user's type check into packages that are
// not installed, and add no types: they go. Those of dependencies stay (tfjs-core's chained ops
// declare their methods through one).
const installed = new Set(['dependencies', 'peerDependencies', 'optionalDependencies'].flatMap((k) => Object.keys(pkg[k] ?? {})));
const typesDir = path.join(cwd, 'dist', 'types');
for (const file of readdirSync(typesDir, { recursive: true })) {
  if (!String(file).endsWith('.d.ts')) continue;
  const text = readFileSync(path.join(typesDir, file), 'utf8').replace(/^import\s*['"]([^'".][^'"]*)['"];\n/gm, (line, spec) =>
    installed.has(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]) ? line : '');
  writeFileSync(path.join(typesDir, file), text);
  const cts = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.js(['"])/g, '$1$2.cjs$3');
  writeFileSync(path.join(typesDir, String(file).replace(/\.d\.ts$/, '.d.cts')), cts);
}

// Every tarball carries the license it is published under.
copyFileSync(fileURLToPath(new URL('../../LICENSE', import.meta.url)), path.join(cwd, 'LICENSE'));
