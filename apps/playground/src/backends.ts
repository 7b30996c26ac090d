/** Where the page's WASM binaries are served from: `${base}wasm/` (copied there at build time). */
export function wasmPaths(base: string): string {
  return new URL(`${base}wasm/`, location.href).href;
}
