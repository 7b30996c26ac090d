/**
 * A fast path for small, plain JPEGs in Node: libjpeg-turbo compiled to WebAssembly (mozjpeg's
 * decoder, from `@jsquash/jpeg`) called synchronously on the decoding thread.
 *
 * Why: libvips (sharp) costs ~0.5–0.7 ms of CPU per image whatever its size (pipeline set-up,
 * threads, colour management), which for 28×28 images is the whole cost and slower than a small
 * model trains (tools/bench/image-folder.mjs; docs/benchmarks.md "Image folders"). The same
 * libjpeg-turbo code called directly costs ~20 µs for such an image.
 *
 * Only files whose decode is fully determined by libjpeg's defaults take this path, so that it
 * gives the very pixels sharp gives (`test/image-folder.test.ts` compares them): baseline,
 * extended or progressive Huffman JPEG, 8 bits, grey or three components, no EXIF block (it may
 * carry an orientation), no ICC profile (sharp would convert from it), no Adobe marker (it can
 * declare a colour transform), the file ending in its EOI marker (sharp fails on a truncated file;
 * libjpeg alone would pad it with grey), and no shrinking needed (sharp shrinks while decoding).
 * Everything else, and anything this decoder refuses, goes to sharp.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** The largest image (pixels) taken by the fast path; above it libvips' fixed cost no longer dominates. */
export const SMALL_JPEG_MAX_PIXELS = 512 * 512;

/** What the fast path may take: a plain JPEG's size, or undefined for anything else. */
export function plainJpegSize(bytes: Uint8Array): { height: number; width: number } | undefined {
  const n = bytes.length;
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  // Truncated files (and files with bytes after the image) go to sharp, which judges them.
  if (bytes[n - 2] !== 0xff || bytes[n - 1] !== 0xd9) return undefined;
  let size: { height: number; width: number } | undefined;
  let p = 2;
  while (p + 4 <= n) {
    if (bytes[p] !== 0xff) return undefined;
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (len < 2 || p + 2 + len > n) return undefined;
    const at = p + 4;
    if (marker === 0xda) return size; // start of scan: every header segment has been seen
    if (marker === 0xe1 || marker === 0xe2 || marker === 0xee) return undefined; // APP1 (EXIF, XMP), APP2 (ICC), APP14 (Adobe)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      // A frame header. Only Huffman baseline (C0), extended (C1) and progressive (C2).
      if (marker > 0xc2 || len < 8) return undefined;
      const precision = bytes[at];
      const height = (bytes[at + 1] << 8) | bytes[at + 2];
      const width = (bytes[at + 3] << 8) | bytes[at + 4];
      const components = bytes[at + 5];
      if (precision !== 8 || (components !== 1 && components !== 3) || height === 0 || width === 0) return undefined;
      size = { height, width };
    }
    p += 2 + len;
  }
  return undefined;
}

interface Mozjpeg {
  decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}
type Factory = (options: Record<string, unknown>) => Promise<Mozjpeg>;

let loading: Promise<{ factory: Factory; wasm: WebAssembly.Module }> | undefined;
let decoder: Mozjpeg | undefined;
let unavailable = false;
let decodes = 0;

/** Images this thread has decoded on the fast path (lets tests see that it is taken). */
export function plainJpegDecodes(): number {
  return decodes;
}

/** Compiles the decoder once per thread (~10 ms). */
function load(): Promise<{ factory: Factory; wasm: WebAssembly.Module }> {
  loading ??= (async () => {
    const req = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    const glue = req.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.js');
    const wasm = await WebAssembly.compile(readFileSync(req.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
    const factory = ((await import(pathToFileURL(glue).href)) as { default: Factory }).default;
    return { factory, wasm };
  })();
  return loading;
}

async function instance(): Promise<Mozjpeg> {
  if (decoder) return decoder;
  const { factory, wasm } = await load();
  decoder = await factory({
    noInitialRun: true,
    // libjpeg's messages (warnings such as "Corrupt JPEG data", the reason of an error exit) would go
    // to the console: a file it refuses goes to sharp, which reports it as a DataFormatError.
    print: () => undefined,
    printErr: () => undefined,
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      const inst = new WebAssembly.Instance(wasm, imports);
      done(inst);
      return inst.exports;
    },
  });
  return decoder;
}

/**
 * Compiles and instantiates the decoder now rather than at the first image (~10 ms of compiling,
 * then the first decodes run unoptimised): a decoding thread calls it when it starts, so that this
 * happens while the folder is being opened, not in the first training step. Never throws (a
 * decoder that cannot load leaves plain JPEGs to sharp, as `decodePlainJpeg` does).
 */
export async function preparePlainJpeg(): Promise<void> {
  try {
    await instance();
  } catch {
    unavailable = true;
  }
}

/**
 * A plain JPEG (see `plainJpegSize`) decoded to 8-bit pixels in `compactPixels` form (one byte per
 * pixel when grey, else RGB), HWC; undefined when the WebAssembly decoder cannot be loaded or
 * refuses the file (the caller then uses sharp, which reports why).
 */
export async function decodePlainJpeg(bytes: Uint8Array, size: { height: number; width: number }): Promise<Uint8Array | undefined> {
  if (unavailable) return undefined;
  let dec: Mozjpeg;
  try {
    dec = await instance();
  } catch {
    unavailable = true;
    return undefined;
  }
  let img: ReturnType<Mozjpeg['decode']>;
  try {
    img = dec.decode(bytes, true);
  } catch {
    // libjpeg's error exit leaves the module's state undefined: start a fresh instance next time.
    decoder = undefined;
    return undefined;
  }
  const n = size.width * size.height;
  if (!img || img.width !== size.width || img.height !== size.height || img.data.length !== n * 4) return undefined;
  decodes++;
  // RGBA → compact form in one pass: grey until a pixel says otherwise.
  const rgba = img.data;
  let s = 0;
  while (s < rgba.length && rgba[s] === rgba[s + 1] && rgba[s] === rgba[s + 2]) s += 4;
  if (s === rgba.length) {
    const grey = new Uint8Array(n);
    for (let p = 0; p < n; p++) grey[p] = rgba[4 * p];
    return grey;
  }
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    rgb[3 * p] = rgba[4 * p];
    rgb[3 * p + 1] = rgba[4 * p + 1];
    rgb[3 * p + 2] = rgba[4 * p + 2];
  }
  return rgb;
}
