// node --test tools/scripts/test/
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { checkPackage, importsOf } from '../check-deps.mjs';

const dirs = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A built package: package.json fields and files by relative path. */
function fixture(pkg, files) {
  const dir = mkdtempSync(path.join(tmpdir(), 'check-deps-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: '@kiln/fixture', files: ['dist'], ...pkg }));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

test('a package that declares exactly what it imports passes', () => {
  const dir = fixture(
    { dependencies: { '@kiln/core': '0.1.0', tsyringe: '^4' }, devDependencies: { '@tensorflow/tfjs-backend-cpu': '4.22.0' } },
    {
      'dist/index.js': "import { tf } from '@kiln/core';\nconst t = require('tsyringe');\nimport 'node:fs';",
      'dist/types/index.d.ts': "import type { Tensor } from '@kiln/core';",
      'src/index.ts': "import '@tensorflow/tfjs-backend-cpu/dist/base.js';\nimport { tf } from '@kiln/core';",
    },
  );
  assert.deepEqual(checkPackage(dir), []);
});

test('an import nobody declared fails', () => {
  const dir = fixture({ dependencies: {} }, { 'dist/index.js': "export * from 'node-fetch';" });
  assert.deepEqual(checkPackage(dir), ['imports node-fetch but does not declare it in dependencies']);
});

test('a dependency nothing shipped imports fails, even when src/ mentions it in a comment', () => {
  const dir = fixture({ dependencies: { '@kiln/layers': '0.1.0' } }, { 'dist/index.js': "// see import '@kiln/layers'\nexport const x = 1;" });
  assert.deepEqual(checkPackage(dir), ['declares @kiln/layers but nothing it ships imports it']);
});

test('an optional peer loaded through a variable counts as used when the bundle names it', () => {
  const dir = fixture(
    { peerDependencies: { '@tensorflow/tfjs-node': '^4' }, peerDependenciesMeta: { '@tensorflow/tfjs-node': { optional: true } } },
    { 'dist/index.js': "const name = '@tensorflow/tfjs-node';\nexport const load = () => import(name);" },
  );
  assert.deepEqual(checkPackage(dir), []);
});

test('a test or source import listed nowhere fails', () => {
  const dir = fixture({}, { 'dist/index.js': 'export {};', 'test/a.test.ts': "import { expect } from 'chai';" });
  assert.deepEqual(checkPackage(dir), [`${path.join('test', 'a.test.ts')} imports chai, which package.json does not list`]);
});

test('importsOf reads every import form and maps type references to @types', () => {
  const text = [
    "import a from 'a';",
    "export { b } from '@s/b/sub';",
    "import 'c/d.js';",
    "const e = await import('e');",
    "require(\"f\"); require.resolve('g/package.json');",
    '/// <reference types="long" />',
    "import x from './relative.js'; import 'node:path'; import 'fs';",
  ].join('\n');
  assert.deepEqual([...importsOf(text)].sort(), ['@s/b', '@types/long', 'a', 'c', 'e', 'f', 'g']);
});
