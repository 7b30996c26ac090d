#!/usr/bin/env node
// `npx changeset version` as a dry run: applies the pending changesets to a copy of the workspace's
// manifests in the temp directory (versions, internal dependency ranges, CHANGELOG.md files) and
// checks the result, leaving the repository untouched. Fails when a changeset names a package
// that does not exist or is malformed, which `changeset version` itself reports.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = mkdtempSync(path.join(tmpdir(), 'kiln-changeset-'));
const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));
const rootPkg = readJson(path.join(root, 'package.json'));

try {
  cpSync(path.join(root, 'package.json'), path.join(work, 'package.json'));
  cpSync(path.join(root, '.changeset'), path.join(work, '.changeset'), { recursive: true });
  for (const w of rootPkg.workspaces) {
    cpSync(path.join(root, w, 'package.json'), path.join(work, w, 'package.json'));
    if (existsSync(path.join(root, w, 'CHANGELOG.md'))) cpSync(path.join(root, w, 'CHANGELOG.md'), path.join(work, w, 'CHANGELOG.md'));
  }
  const pending = readdirSync(path.join(work, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md');
  const bin = path.join(root, 'node_modules', '@changesets', 'cli', 'bin.js');
  execFileSync(process.execPath, [bin, 'version'], { cwd: work, stdio: ['ignore', 'inherit', 'inherit'] });

  const left = readdirSync(path.join(work, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md');
  if (left.length) throw new Error(`changeset version left ${left.length} changesets unapplied: ${left.join(', ')}`);
  const bumped = [];
  for (const w of rootPkg.workspaces) {
    const before = readJson(path.join(root, w, 'package.json'));
    const after = readJson(path.join(work, w, 'package.json'));
    if (before.version !== after.version) {
      if (!existsSync(path.join(work, w, 'CHANGELOG.md'))) throw new Error(`${after.name} went to ${after.version} without a CHANGELOG.md`);
      bumped.push(`${after.name} ${before.version} → ${after.version}`);
    }
  }
  console.log(`changeset version (dry run): ${pending.length} changesets; ${bumped.length ? bumped.join(', ') : 'no version changes'}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
