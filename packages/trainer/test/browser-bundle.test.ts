/**
 * @kiln/trainer and @kiln/data bundle for a browser with no shims: esbuild, as a bundler user
 * runs it (platform `browser`, so the packages' `browser` export conditions apply), over their
 * built dist/. Any Node builtin the bundle reaches (`node:fs`, `fs`, `worker_threads`, …) fails the
 * test, naming who imported it. The Node-only functions are still there, as stubs that throw a
 * NodeOnlyError naming themselves.
 */
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const builtins = new Set(builtinModules);

/** Bundles `source` for browsers; returns the output and every Node builtin import met (`importer -> spec`). */
async function bundleForBrowser(source: string): Promise<{ code: string; nodeImports: string[] }> {
  const nodeImports: string[] = [];
  const spy: Plugin = {
    name: 'node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.replace(/^node:/, '').split('/')[0];
        if (args.path.startsWith('node:') || builtins.has(bare)) {
          nodeImports.push(`${path.relative(here, args.importer)} -> ${args.path}`);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
  const out = await build({
    stdin: { contents: source, resolveDir: here, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
    plugins: [spy],
  });
  return { code: out.outputFiles[0].text, nodeImports };
}

describe('browser bundle of @kiln/trainer and @kiln/data', () => {
  it('reaches no Node builtin', async () => {
    const { code, nodeImports } = await bundleForBrowser(`
      import * as trainer from '@kiln/trainer';
      import * as data from '@kiln/data';
      globalThis.kiln = { trainer, data };
    `);
    expect(nodeImports).toEqual([]);
    expect(code).not.toMatch(/\bfrom\s*["']node:/);
    // No CommonJS require of a file-system or worker module either. (seedrandom, inside @kiln/core,
    // probes `__require("crypto")` in a try block and falls back to the Web Crypto API: not matched.)
    expect(code).not.toMatch(/(?<![\w$])require\(["'](?:node:)?(?:fs|path|os|worker_threads|crypto|zlib)["']\)/);
    // The browser build was picked: IndexedDB is the default storage, files are refused by name.
    expect(code).toContain('IndexedDbStorage');
    expect(code).toMatch(/new NodeOnlyError\("FileStorage"/);
    expect(code).not.toMatch(/["']sharp["']|["']pngjs["']/);
  }, 60_000);

  it('the same check fails on a package that imports node:fs', async () => {
    // The check itself: a Node-only entry (@kiln/core/node) is caught.
    const { nodeImports } = await bundleForBrowser(`import { readFileChecked } from '@kiln/core/node'; globalThis.f = readFileChecked;`);
    expect(nodeImports.some((s) => s.endsWith('-> node:fs'))).toBe(true);
  }, 60_000);
});
