import { nodeBuiltin } from '@kiln/core';

/**
 * Where the tfjs WASM binaries live. In Node they are read from the installed
 * `@tensorflow/tfjs-backend-wasm` package; in browsers the page must serve them and say where
 * (`wasmBackend({ wasmPaths: '/assets/' })`), as bundlers do not copy them on their own.
 */
export function defaultWasmDirectory(): string | undefined {
  const module = nodeBuiltin<typeof import('node:module')>('module');
  const path = nodeBuiltin<typeof import('node:path')>('path');
  if (!module || !path) return undefined;
  const { createRequire } = module;
  const here = typeof __filename === 'string' ? __filename : import.meta.url;
  const req = createRequire(here);
  const main = req.resolve('@tensorflow/tfjs-backend-wasm');
  return path.join(path.dirname(main), path.sep);
}
