#!/usr/bin/env node
// Scaffolds the boilerplate files of a workspace package that are the same everywhere
// (tsconfig.json, tsconfig.build.json). package.json, README.md and src/ are written by hand.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

for (const dir of process.argv.slice(2)) {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  mkdirSync(path.join(dir, 'test'), { recursive: true });
  const rel = path.relative(dir, '.') || '.';
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: `${rel}/tsconfig.base.json`, compilerOptions: { noEmit: true }, include: ['src', 'test'] }, null, 2) + '\n',
  );
  writeFileSync(
    path.join(dir, 'tsconfig.build.json'),
    JSON.stringify({ extends: `${rel}/tsconfig.base.json`, compilerOptions: { rootDir: 'src', outDir: 'dist/types' }, include: ['src'] }, null, 2) + '\n',
  );
}
