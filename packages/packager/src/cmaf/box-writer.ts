/**
 * A size-first ISO BMFF box writer for the cold path (init segments). A box tree is described
 * with small {@link BoxField} values whose byte lengths are known when they are created; the
 * tree is then written into one buffer allocated at the exact total size. The per-sample hot
 * path (moof+mdat) does not use this; it is written by hand in `fragment.ts`.
 */

/** A piece of a box: a field, raw bytes, or a whole child box. */
export interface BoxField {
  /** Exact encoded length in bytes. */
  readonly byteLength: number;
  /** Writes the field at `offset` and returns the offset after it. */
  writeTo(view: DataView, bytes: Uint8Array, offset: number): number;
}

class UintField implements BoxField {
  readonly byteLength: number;
  readonly #value: number;

  constructor(byteLength: 1 | 2 | 3 | 4 | 8, value: number) {
    const max = byteLength === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * byteLength) - 1;
    if (!Number.isSafeInteger(value) || value < 0 || value > max) {
      throw new RangeError(`${value} does not fit an unsigned ${8 * byteLength}-bit field`);
    }
    this.byteLength = byteLength;
    this.#value = value;
  }

  writeTo(view: DataView, _bytes: Uint8Array, offset: number): number {
    const value = this.#value;
    switch (this.byteLength) {
      case 1:
        view.setUint8(offset, value);
        break;
      case 2:
        view.setUint16(offset, value);
        break;
      case 3:
        view.setUint8(offset, value >>> 16);
        view.setUint16(offset + 1, value & 0xffff);
        break;
      case 4:
        view.setUint32(offset, value);
        break;
      default:
        view.setUint32(offset, Math.floor(value / 2 ** 32));
        view.setUint32(offset + 4, value >>> 0);
    }
    return offset + this.byteLength;
  }
}

class IntField implements BoxField {
  readonly byteLength: 2 | 4;
  readonly #value: number;

  constructor(byteLength: 2 | 4, value: number) {
    this.byteLength = byteLength;
    this.#value = value;
  }

  writeTo(view: DataView, _bytes: Uint8Array, offset: number): number {
    if (this.byteLength === 2) view.setInt16(offset, this.#value);
    else view.setInt32(offset, this.#value);
    return offset + this.byteLength;
  }
}

class BytesField implements BoxField {
  readonly byteLength: number;
  readonly #data: Uint8Array;

  constructor(data: Uint8Array) {
    this.byteLength = data.byteLength;
    this.#data = data;
  }

  writeTo(_view: DataView, bytes: Uint8Array, offset: number): number {
    bytes.set(this.#data, offset);
    return offset + this.byteLength;
  }
}

class ZeroField implements BoxField {
  readonly byteLength: number;

  constructor(byteLength: number) {
    this.byteLength = byteLength;
  }

  writeTo(_view: DataView, bytes: Uint8Array, offset: number): number {
    bytes.fill(0, offset, offset + this.byteLength);
    return offset + this.byteLength;
  }
}

class BoxNode implements BoxField {
  readonly byteLength: number;
  readonly #type: number;
  readonly #header: BoxField | undefined;
  readonly #body: readonly BoxField[];

  constructor(type: string, fullHeader: BoxField | undefined, body: readonly BoxField[]) {
    let length = 8 + (fullHeader?.byteLength ?? 0);
    for (const field of body) length += field.byteLength;
    if (length > 0xffffffff)
      throw new RangeError(`box ${type} is ${length} bytes, above the 32-bit size limit`);
    this.byteLength = length;
    this.#type = fourccValue(type);
    this.#header = fullHeader;
    this.#body = body;
  }

  writeTo(view: DataView, bytes: Uint8Array, offset: number): number {
    view.setUint32(offset, this.byteLength);
    view.setUint32(offset + 4, this.#type);
    let at = offset + 8;
    if (this.#header) at = this.#header.writeTo(view, bytes, at);
    for (const field of this.#body) at = field.writeTo(view, bytes, at);
    return at;
  }
}

/** The 32-bit big-endian value of a four-character code. */
export function fourccValue(code: string): number {
  if (code.length !== 4)
    throw new RangeError(`four-character code ${JSON.stringify(code)} is not 4 characters`);
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const ch = code.charCodeAt(i);
    if (ch > 0xff) throw new RangeError(`four-character code ${JSON.stringify(code)} is not Latin-1`);
    value = value * 256 + ch;
  }
  return value;
}

/** An unsigned 8-bit field. */
export function u8(value: number): BoxField {
  return new UintField(1, value);
}
/** An unsigned big-endian 16-bit field. */
export function u16(value: number): BoxField {
  return new UintField(2, value);
}
/** An unsigned big-endian 24-bit field. */
export function u24(value: number): BoxField {
  return new UintField(3, value);
}
/** An unsigned big-endian 32-bit field. */
export function u32(value: number): BoxField {
  return new UintField(4, value);
}
/** An unsigned big-endian 64-bit field (values up to 2^53 - 1). */
export function u64(value: number): BoxField {
  return new UintField(8, value);
}
/** A signed big-endian 16-bit field. */
export function i16(value: number): BoxField {
  return new IntField(2, value);
}
/** A signed big-endian 32-bit field. */
export function i32(value: number): BoxField {
  return new IntField(4, value);
}
/** A four-character code. */
export function fourcc(code: string): BoxField {
  return new UintField(4, fourccValue(code));
}
/** Raw bytes, copied in when the tree is written. */
export function bytes(data: Uint8Array): BoxField {
  return new BytesField(data);
}
/** `length` zero bytes (reserved fields). */
export function zeros(length: number): BoxField {
  return new ZeroField(length);
}
/** A NUL-terminated UTF-8 string. */
export function cstring(text: string): BoxField {
  const encoded = new TextEncoder().encode(text);
  const out = new Uint8Array(encoded.byteLength + 1);
  out.set(encoded);
  return new BytesField(out);
}

/** A plain box: 32-bit size, type, body. */
export function box(type: string, ...body: BoxField[]): BoxField {
  return new BoxNode(type, undefined, body);
}

/** A full box: 32-bit size, type, 8-bit version, 24-bit flags, body. */
export function fullBox(type: string, version: number, flags: number, ...body: BoxField[]): BoxField {
  return new BoxNode(type, new UintField(4, version * 0x1000000 + flags), body);
}

/** Writes `fields` back to back into one buffer allocated at their exact total length. */
export function writeBoxes(...fields: BoxField[]): Uint8Array {
  let length = 0;
  for (const field of fields) length += field.byteLength;
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const field of fields) offset = field.writeTo(view, out, offset);
  return out;
}
