/**
 * The few protobuf wire-format pieces TensorBoard event files need (varints, 64-bit doubles,
 * 32-bit floats, length-delimited fields), plus a reader used to check what was written.
 * Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
 */
export class ProtoWriter {
  private chunks: number[] = [];

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this.chunks.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.chunks.push(Number(n));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number): this {
    this.tag(field, 0);
    this.varint(Math.trunc(v));
    return this;
  }

  double(field: number, v: number): this {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.chunks.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.chunks.push(...b);
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    this.tag(field, 2);
    this.varint(v.length);
    for (const x of v) this.chunks.push(x);
    return this;
  }

  string(field: number, v: string): this {
    return this.bytes(field, new TextEncoder().encode(v));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  /** A packed repeated double field. */
  packedDoubles(field: number, vs: ArrayLike<number>): this {
    const b = new Uint8Array(8 * vs.length);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < vs.length; i++) dv.setFloat64(8 * i, vs[i], true);
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

export type ProtoValue = number | bigint | Uint8Array;

/** Decodes one message level into field number → values (length-delimited fields stay bytes). */
export function readProto(bytes: Uint8Array): Map<number, ProtoValue[]> {
  const out = new Map<number, ProtoValue[]>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= bytes.length) throw new RangeError('truncated varint');
      const b = bytes[i++];
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
    }
  };
  while (i < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    let v: ProtoValue;
    switch (key & 7) {
      case 0:
        v = varint();
        break;
      case 1:
        v = dv.getFloat64(i, true);
        i += 8;
        break;
      case 5:
        v = dv.getFloat32(i, true);
        i += 4;
        break;
      case 2: {
        const n = Number(varint());
        v = bytes.subarray(i, i + n);
        i += n;
        break;
      }
      default:
        throw new RangeError(`unsupported wire type ${key & 7}`);
    }
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(v);
  }
  return out;
}
