#!/usr/bin/env node
// Keeps the docs in step with the code where drift is easy to miss:
//   - docs/trainer.md's callback list names every callback class in packages/trainer/src/callbacks/
//   - the README's package table lists every workspace package
//   - every relative link in README.md, CONTRIBUTING.md, docs/ and the packages' READMEs points at a
//     file inside the repository that exists
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (f) => readFileSync(path.join(root, f), 'utf8');
const problems = [];

const callbacksDir = 'packages/trainer/src/callbacks';
const trainerDoc = read('docs/trainer.md');
const callbackSection = trainerDoc.slice(trainerDoc.indexOf('## Callbacks'), trainerDoc.indexOf('\n## ', trainerDoc.indexOf('## Callbacks') + 1));
for (const f of readdirSync(path.join(root, callbacksDir)).filter((f) => f.endsWith('.ts'))) {
  for (const [, name] of read(`${callbacksDir}/${f}`).matchAll(/^export class (\w+)/gm)) {
    if (name !== 'Monitor' && !new RegExp(`\\b${name}\\b`).test(callbackSection)) problems.push(`docs/trainer.md's callback list lacks ${name} (${callbacksDir}/${f})`);
  }
}

const readme = read('README.md');
for (const w of JSON.parse(read('package.json')).workspaces) {
  const name = JSON.parse(read(`${w}/package.json`)).name;
  if (!readme.includes(`| \`${name}\``)) problems.push(`README.md's package table lacks ${name}`);
}

const docs = ['README.md', 'CONTRIBUTING.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
for (const w of JSON.parse(read('package.json')).workspaces) if (existsSync(path.join(root, w, 'README.md'))) docs.push(`${w}/README.md`);
for (const doc of docs) {
  for (const [, target] of read(doc).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target) || target.startsWith('#')) continue;
    const file = path.resolve(root, path.dirname(doc), decodeURIComponent(target.split('#')[0]));
    if (!file.startsWith(root + path.sep)) problems.push(`${doc} links outside the repository: ${target}`);
    else if (!existsSync(file)) problems.push(`${doc} links to a missing file: ${target}`);
  }
}

for (const p of problems) console.error(`check-docs: ${p}`);
if (problems.length) process.exit(1);
console.log(`check-docs: callback list, package table and links in ${docs.length} documents match the repository`);
