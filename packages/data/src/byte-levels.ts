/**
 * The float32 value of each of the 256 bytes under `scale`: `b / scale` rounded to float32, the
 * value a Float32Array holds after `x[i] = bytes[i] / scale`. A table lookup per value then gives
 * exactly the numbers of that conversion.
 */
export function byteLevels(scale: number): Float32Array {
  const levels = new Float32Array(256);
  for (let b = 0; b < 256; b++) levels[b] = b / scale;
  return levels;
}

/** True where a Uint32Array reads the lowest-addressed byte into the lowest 8 bits. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * Writes rows of bytes as float32 through `levels`: row `rows[i]` of `size` bytes (in `bytes`) to
 * `out` at `i * size`, each byte `b` becoming `levels[b]`. Where rows start on 4-byte boundaries the
 * bytes are read four per load (a Uint32Array word split by shifts), which makes converting a batch
 * about twice as fast as reading byte by byte: close to copying the rows as float32.
 */
export function bytesToFloats(bytes: Uint8Array, rows: ArrayLike<number>, size: number, levels: Float32Array, out: Float32Array): void {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0 && size % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
    const perRow = size >> 2;
    for (let i = 0; i < rows.length; i++) {
      const first = rows[i] * perRow;
      for (let w = first, o = i * size; w < first + perRow; w++, o += 4) {
        const v = words[w];
        out[o] = levels[v & 255];
        out[o + 1] = levels[(v >>> 8) & 255];
        out[o + 2] = levels[(v >>> 16) & 255];
        out[o + 3] = levels[v >>> 24];
      }
    }
    return;
  }
  for (let i = 0; i < rows.length; i++) {
    const from = rows[i] * size;
    const at = i * size;
    for (let k = 0; k < size; k++) out[at + k] = levels[bytes[from + k]];
  }
}
