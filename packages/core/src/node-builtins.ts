/**
 * Node's built-in modules for library code that must also load in browsers, where a static
 * `import 'node:fs'` would break bundlers. Node 20.16+ (and Deno, Bun) hand them out through
 * `process.getBuiltinModule`; older Node gets them from `require`, which Kiln's Node bundles define
 * (see tools/scripts/build-package.mjs) and CommonJS has anyway. Elsewhere the answer is `undefined`.
 */
type NodeProcess = { versions?: { node?: string }; getBuiltinModule?: (name: string) => unknown };

/** Node's built-in module `name` (`'fs'`, `'os'`, …), or `undefined` outside Node. */
export function nodeBuiltin<T = unknown>(name: string): T | undefined {
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (typeof proc?.versions?.node !== 'string') return undefined;
  if (proc.getBuiltinModule) return proc.getBuiltinModule(name) as T | undefined;
  // The one deliberate require(): a variable name, resolved at run time, never by a bundler.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return typeof require === 'function' ? (require(name) as T) : undefined;
}
