#!/usr/bin/env node
// Checks that every injection token a package exports from its src/tokens.ts is resolved somewhere
// in the sources of the packages and apps: a constructor parameter (`@inject(TOKEN)`,
// `@injectAll(TOKEN)`) or a composition root's `resolve(TOKEN)` / `resolveAll(TOKEN)`. A token
// nobody resolves promises users an extension point that does nothing; use it or remove it.
//
//   node tools/scripts/check-tokens.mjs          (exit 1 and one line per unresolved token)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Source text without comments, so a token named in a doc comment does not count as resolved. */
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Names of the `export const NAME: InjectionToken<…>` declarations in one file's text. */
export function tokensDeclared(text) {
  return [...code(text).matchAll(/export\s+const\s+([A-Za-z_$][\w$]*)\s*:\s*InjectionToken\s*</g)].map((m) => m[1]);
}

/** Whether `text` resolves `token` through tsyringe. */
export function resolves(text, token) {
  const t = token.replace(/\$/g, '\\$');
  return new RegExp(`(?:@inject|@injectAll|\\.resolve|\\.resolveAll)\\s*(?:<[^>]*>)?\\(\\s*${t}\\b`).test(code(text));
}

/**
 * The problems: `sources` maps file paths to their text; tokens are read from files named
 * `tokens.ts`, resolutions from every file.
 */
export function unresolvedTokens(sources) {
  const problems = [];
  for (const [file, text] of Object.entries(sources)) {
    if (path.basename(file) !== 'tokens.ts') continue;
    for (const token of tokensDeclared(text)) {
      if (!Object.values(sources).some((other) => resolves(other, token))) problems.push(`${file}: ${token} is exported but nothing in src resolves it (@inject/@injectAll/resolve)`);
    }
  }
  return problems;
}

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|tsx|mts|cts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every TypeScript source file under packages/*\/src and apps/*\/src, by path relative to the repository. */
export function repositorySources() {
  const sources = {};
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(path.join(root, group))) {
      const src = path.join(root, group, name, 'src');
      if (!existsSync(src)) continue;
      for (const f of walk(src)) sources[path.relative(root, f)] = readFileSync(f, 'utf8');
    }
  }
  return sources;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = unresolvedTokens(repositorySources());
  for (const p of problems) console.error(`check-tokens: ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log('check-tokens: every exported injection token is resolved');
}
