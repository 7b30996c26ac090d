import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');
const workspaces: string[] = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).workspaces;
const packages = workspaces
  .filter((w) => existsSync(path.join(root, w, 'package.json')))
  .map((w) => ({ dir: w, pkg: JSON.parse(readFileSync(path.join(root, w, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private && pkg.exports);

describe('every built package loads from plain Node', () => {
  it('finds the workspace packages', () => {
    expect(packages.map((p) => p.pkg.name)).toEqual(expect.arrayContaining(['@kiln/core', '@kiln/layers', '@kiln/optim', '@kiln/data', '@kiln/zoo', '@kiln/trainer', '@kiln/backend-cpu', '@kiln/cli']));
  });

  for (const { pkg } of packages) {
    it(`${pkg.name} via require() and import()`, () => {
      const script = `
        const viaRequire = require(${JSON.stringify(pkg.name)});
        import(${JSON.stringify(pkg.name)}).then((viaImport) => {
          const a = Object.keys(viaRequire).sort(), b = Object.keys(viaImport).filter((k) => k !== 'default').sort();
          console.log(JSON.stringify({ require: a, import: b }));
        });`;
      const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
      const { require: r, import: i } = JSON.parse(out.trim().split('\n').pop()!);
      expect(r.length).toBeGreaterThan(0);
      expect(i).toEqual(r);
    });
  }

  it('each package ships its declared files', () => {
    for (const { dir, pkg } of packages) {
      // Conditions nest (`import` → `types`, `node`, `default`): every leaf is a shipped file.
      const files = (target: unknown): string[] =>
        typeof target === 'string' ? [target] : target && typeof target === 'object' ? Object.values(target).flatMap(files) : [];
      for (const file of files(pkg.exports)) expect(existsSync(path.join(root, dir, file)), `${pkg.name}: ${file}`).toBe(true);
      expect(readdirSync(path.join(root, dir, 'dist')).length).toBeGreaterThan(0);
    }
  });
});
