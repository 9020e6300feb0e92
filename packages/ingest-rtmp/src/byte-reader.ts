import { RtmpError, type RtmpErrorCode } from "./errors.ts";

/**
 * A bounded big-endian reader over one byte view. Every read checks the remaining length first
 * and throws one {@link RtmpError} (with the code and subject given at construction) instead of
 * a RangeError, so hostile lengths never escape as anything else.
 */
export class ByteReader {
  /** The bytes being read (a view; reads return subarrays of it). */
  readonly bytes: Uint8Array;
  /** Position of the next byte to read. */
  offset: number;
  /** One past the last readable byte. */
  readonly end: number;
  readonly #code: RtmpErrorCode;
  readonly #subject: string;
  #view: DataView | undefined;

  constructor(
    bytes: Uint8Array,
    code: RtmpErrorCode,
    subject: string,
    offset = 0,
    end: number = bytes.byteLength,
  ) {
    this.bytes = bytes;
    this.offset = offset;
    this.end = end;
    this.#code = code;
    this.#subject = subject;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Throws the reader's error unless `n` more bytes are available. */
  need(n: number): void {
    if (n > this.end - this.offset || n < 0) {
      throw this.error(
        `${this.#subject} is truncated: needs ${n} bytes at offset ${this.offset}, ${this.end - this.offset} left`,
      );
    }
  }

  /** An error with this reader's code and subject. */
  error(message: string): RtmpError {
    return new RtmpError(this.#code, message);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 2;
    return (b[o]! << 8) | b[o + 1]!;
  }

  u24(): number {
    this.need(3);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 3;
    return (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;
  }

  /** Signed 24-bit (FLV composition time). */
  i24(): number {
    const v = this.u24();
    return v & 0x800000 ? v - 0x1000000 : v;
  }

  u32(): number {
    this.need(4);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 4;
    return ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
  }

  i16(): number {
    const v = this.u16();
    return v & 0x8000 ? v - 0x10000 : v;
  }

  f64(): number {
    this.need(8);
    this.#view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const v = this.#view.getFloat64(this.offset);
    this.offset += 8;
    return v;
  }

  /** A zero-copy view of the next `n` bytes. */
  bytesView(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** The rest of the readable bytes as a view. */
  rest(): Uint8Array {
    const v = this.bytes.subarray(this.offset, this.end);
    this.offset = this.end;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }
}

const utf8 = new TextDecoder("utf-8");

/** Decodes UTF-8 leniently (invalid sequences become U+FFFD rather than throwing). */
export function decodeUtf8(bytes: Uint8Array): string {
  // Short ASCII strings (command names, keys) are the common case and cheaper to build directly.
  if (bytes.byteLength <= 32) {
    let ascii = true;
    for (let i = 0; i < bytes.byteLength; i++) {
      if (bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode(...bytes);
  }
  return utf8.decode(bytes);
}
