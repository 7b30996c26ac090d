/**
 * The stored size an image's header declares, read from its first bytes without decoding: PNG
 * (IHDR), GIF (logical screen), JPEG (first SOFn frame header) and WebP (VP8, VP8L, VP8X). Used
 * where the decoder cannot be told a pixel limit (a browser's `createImageBitmap`), so a small file
 * declaring a huge size is refused before it is decoded. `undefined` when the format is not one of
 * these or the header is cut short.
 */
export function headerSize(b: Uint8Array): { width: number; height: number } | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const has = (n: number) => b.length >= n;
  // PNG: signature, then IHDR with width and height as big-endian 32-bit integers.
  if (has(24) && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return { width: dv.getUint32(16), height: dv.getUint32(20) };
  // GIF87a / GIF89a: little-endian 16-bit logical screen size.
  if (has(10) && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return { width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
  // JPEG: walk the marker segments to the first start-of-frame (SOF0..SOF15 except DHT, JPG, DAC).
  if (has(4) && b[0] === 0xff && b[1] === 0xd8) {
    let p = 2;
    while (p + 9 <= b.length) {
      if (b[p] !== 0xff) return undefined;
      const marker = b[p + 1];
      if (marker === 0xff) {
        p++;
        continue;
      }
      const len = dv.getUint16(p + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return { height: dv.getUint16(p + 5), width: dv.getUint16(p + 7) };
      p += 2 + len;
    }
    return undefined;
  }
  // WebP: RIFF....WEBP then one of three chunk kinds.
  if (has(30) && dv.getUint32(0) === 0x52494646 && dv.getUint32(8) === 0x57454250) {
    const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (chunk === 'VP8 ') return { width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = dv.getUint32(21, true);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
  }
  return undefined;
}
