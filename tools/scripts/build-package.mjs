#!/usr/bin/env node
// Builds the package in the current directory: an ESM and a CJS bundle per entry (esbuild) and
// declaration files (tsc). Bare imports stay external unless the package lists them under
// `kiln.bundle` in its package.json; `kiln.alias` rewrites a bare import to another external one
// (backends use it so the tfjs packages they embed share @kiln/core's single engine).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

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

const externals = {
  name: 'kiln-externals',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (rewrite[args.path]) return { path: rewrite[args.path], external: true };
      for (const [from, to] of Object.entries(alias)) {
        if (matches(args.path, from)) return { path: to, external: true };
      }
      if (args.path.startsWith('.') || path.isAbsolute(args.path)) return undefined;
      if (bundled.some((name) => matches(args.path, name))) return undefined;
      return { path: args.path, external: true };
    });
  },
};

rmSync(path.join(cwd, 'dist'), { recursive: true, force: true });

const common = {
  entryPoints: entries,
  bundle: true,
  outdir: 'dist',
  platform,
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
  plugins: [externals],
  mainFields: ['module', 'main'],
  conditions: ['module'],
  legalComments: 'none',
  define: cfg.define ?? {},
};

// ESM bundles of CommonJS code (tfjs-core's platform layer, emscripten glue) use `require`,
// `__filename` and `__dirname` in Node. Define them where Node is, and leave them undefined,
// harmlessly, in browsers.
const esmBanner = [
  "const require = globalThis.process?.getBuiltinModule?.('module')?.createRequire(import.meta.url);",
  "const __filename = globalThis.process?.getBuiltinModule?.('url')?.fileURLToPath(import.meta.url);",
  "const __dirname = __filename && globalThis.process.getBuiltinModule('path').dirname(__filename);",
  '',
].join('\n');

await Promise.all([
  build({ ...common, format: 'esm', outExtension: { '.js': '.js' }, banner: { js: (cfg.banner ?? '') + esmBanner } }),
  build({ ...common, format: 'cjs', outExtension: { '.js': '.cjs' }, banner: { js: cfg.banner ?? '' } }),
]);

// Declarations: tsc from the workspace root's node_modules.
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const tsconfig = existsSync(path.join(cwd, 'tsconfig.build.json')) ? 'tsconfig.build.json' : 'tsconfig.json';
execFileSync(process.execPath, [tsc, '-p', tsconfig, '--emitDeclarationOnly', '--declaration', '--outDir', 'dist/types', '--rootDir', 'src', '--noEmit', 'false'], {
  stdio: 'inherit',
  cwd,
});
