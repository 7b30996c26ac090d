#!/usr/bin/env node
// Scaffolds the boilerplate of a workspace package that is the same everywhere: package.json (the
// exports map for ESM and CommonJS with their declarations, engines, files, build scripts),
// tsconfig.json and tsconfig.build.json. README.md and src/ are written by hand; existing files
// are left alone.
//
//   node tools/scripts/new-package.mjs packages/<name> [...]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const core = JSON.parse(readFileSync('packages/core/package.json', 'utf8'));

function packageJson(dir) {
  const name = `@kiln/${path.basename(dir)}`;
  const entry = (base) => ({
    import: { types: `./dist/types/${base}.d.ts`, default: `./dist/${base}.js` },
    require: { types: `./dist/types/${base}.d.cts`, default: `./dist/${base}.cjs` },
  });
  return {
    name,
    version: core.version,
    description: 'TODO: one line on what the package holds',
    license: core.license,
    type: 'module',
    engines: core.engines,
    main: './dist/index.cjs',
    module: './dist/index.js',
    types: './dist/types/index.d.cts',
    exports: { '.': entry('index'), './package.json': './package.json' },
    files: ['dist', 'README.md', 'LICENSE'],
    sideEffects: false,
    scripts: {
      build: 'node ../../tools/scripts/build-package.mjs',
      test: 'vitest run --reporter=default --reporter=json --outputFile.json=.vitest-report.json',
      typecheck: 'tsc -p tsconfig.json',
      lint: 'eslint src test --no-error-on-unmatched-pattern',
    },
    dependencies: { '@kiln/core': core.version },
  };
}

function writeNew(file, text) {
  if (existsSync(file)) return console.log(`kept ${file}`);
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}

for (const dir of process.argv.slice(2)) {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  mkdirSync(path.join(dir, 'test'), { recursive: true });
  const rel = path.relative(dir, '.') || '.';
  writeNew(path.join(dir, 'package.json'), JSON.stringify(packageJson(dir), null, 2) + '\n');
  writeNew(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: `${rel}/tsconfig.base.json`, compilerOptions: { noEmit: true }, include: ['src', 'test'] }, null, 2) + '\n',
  );
  writeNew(
    path.join(dir, 'tsconfig.build.json'),
    JSON.stringify({ extends: `${rel}/tsconfig.base.json`, compilerOptions: { rootDir: 'src', outDir: 'dist/types' }, include: ['src'] }, null, 2) + '\n',
  );
}
