/**
 * Synchronous, bounded byte readers and writers for message bodies. A {@link ByteReader} walks
 * one complete message and throws {@link ProtocolViolationError} at the first field that does not
 * fit, naming the message and the field; a {@link ByteWriter} fills a buffer whose size the
 * encoder computed up front, so every message is one allocation and one write.
 */
import { ProtocolViolationError } from "../error.ts";
import { normalizePath } from "../path.ts";
import {
  leadingOnesLength,
  MAX_SAFE_VARINT,
  readLeadingOnesAt,
  readLeadingOnesBigAt,
  readVarintAt,
  readVarintBigAt,
  varintLength,
  varintSize,
  writeLeadingOnes,
  writeLeadingOnesBig,
  writeVarint,
  writeVarintBig,
} from "./varint.ts";

/** Longest broadcast path or track name accepted on the wire, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** UTF-8 bytes of `value`. */
export function utf8(value: string): Uint8Array {
  return utf8Encoder.encode(value);
}

/** Encoded size of a length-prefixed byte string. */
export function bytesFieldSize(value: Uint8Array): number {
  return varintSize(value.byteLength) + value.byteLength;
}

/** Reads fields from one complete message body. */
export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #what: string;
  #pos = 0;

  /** A reader over `buf`; `what` names the message in error messages (e.g. "SUBSCRIBE"). */
  constructor(buf: Uint8Array, what: string) {
    this.#buf = buf;
    this.#what = what;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#buf.byteLength - this.#pos;
  }

  /** Offset of the next byte. */
  get position(): number {
    return this.#pos;
  }

  #need(n: number, field: string): void {
    if (this.#buf.byteLength - this.#pos < n) {
      throw new ProtocolViolationError(
        `${this.#what}: truncated at ${field} (needs ${n} byte(s), ${this.#buf.byteLength - this.#pos} left)`,
        "MOQ_DECODE",
      );
    }
  }

  /** One raw byte. */
  u8(field: string): number {
    this.#need(1, field);
    return this.#buf[this.#pos++]!;
  }

  /** A big-endian 16-bit integer. */
  u16(field: string): number {
    this.#need(2, field);
    const value = (this.#buf[this.#pos]! << 8) | this.#buf[this.#pos + 1]!;
    this.#pos += 2;
    return value;
  }

  /** A byte that must be 0 or 1. */
  bool(field: string): boolean {
    const value = this.u8(field);
    if (value > 1) throw new ProtocolViolationError(`${this.#what}: ${field} must be 0 or 1, got ${value}`);
    return value === 1;
  }

  /** A varint up to 2^53-1 (larger values are a violation), optionally bounded by `max`. */
  varint(field: string, max: number = MAX_SAFE_VARINT): number {
    this.#need(1, field);
    const length = varintLength(this.#buf[this.#pos]!);
    this.#need(length, field);
    const value = readVarintAt(this.#buf, this.#pos);
    this.#pos += length;
    if (value < 0 || value > max) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} ${value < 0 ? "exceeds 2^53-1" : `${value} exceeds the limit ${max}`}`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    return value;
  }

  /** A varint of the full 62-bit range. */
  varintBig(field: string): bigint {
    this.#need(1, field);
    const length = varintLength(this.#buf[this.#pos]!);
    this.#need(length, field);
    const value = readVarintBigAt(this.#buf, this.#pos);
    this.#pos += length;
    return value;
  }

  /** A leading-ones varint (moq-transport draft-17) up to 2^53-1, optionally bounded by `max`. */
  leadingOnes(field: string, max: number = MAX_SAFE_VARINT): number {
    const length = this.#leadingOnesLength(field);
    const value = readLeadingOnesAt(this.#buf, this.#pos);
    this.#pos += length;
    if (value < 0 || value > max) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} ${value < 0 ? "exceeds 2^53-1" : `${value} exceeds the limit ${max}`}`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    return value;
  }

  /** A leading-ones varint of the full 64-bit range. */
  leadingOnesBig(field: string): bigint {
    const length = this.#leadingOnesLength(field);
    const value = readLeadingOnesBigAt(this.#buf, this.#pos);
    this.#pos += length;
    return value;
  }

  #leadingOnesLength(field: string): number {
    this.#need(1, field);
    const length = leadingOnesLength(this.#buf[this.#pos]!);
    if (length === 0) {
      throw new ProtocolViolationError(
        `${this.#what}: ${field} uses the reserved varint prefix 0b1111110`,
        "MOQ_DECODE",
      );
    }
    this.#need(length, field);
    return length;
  }

  /** `n` raw bytes, as a view (no copy). */
  bytes(n: number, field: string): Uint8Array {
    this.#need(n, field);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** A varint length (≤ `max`) followed by that many bytes, as a view. */
  lengthPrefixed(field: string, max: number): Uint8Array {
    const length = this.varint(`${field} length`, max);
    return this.bytes(length, field);
  }

  /** A length-prefixed UTF-8 string of at most `max` bytes. */
  string(field: string, max: number = MAX_NAME_BYTES): string {
    const raw = this.lengthPrefixed(field, max);
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw new ProtocolViolationError(`${this.#what}: ${field} is not valid UTF-8`, "MOQ_DECODE");
    }
  }

  /** A broadcast path (string, normalized as the official clients do on decode). */
  path(field: string): string {
    return normalizePath(this.string(field));
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    const out = this.#buf.subarray(this.#pos);
    this.#pos = this.#buf.byteLength;
    return out;
  }

  /** Asserts the body was consumed exactly. */
  finish(): void {
    if (this.#pos !== this.#buf.byteLength) {
      throw new ProtocolViolationError(
        `${this.#what}: ${this.#buf.byteLength - this.#pos} trailing byte(s) after the last field`,
        "MOQ_DECODE",
      );
    }
  }
}

/** Fills a buffer of a size computed in advance. */
export class ByteWriter {
  readonly buf: Uint8Array;
  #pos = 0;

  /** A writer over a new buffer of exactly `size` bytes. */
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  /**
   * A writer for a size-prefixed message whose body is `bodySize` bytes, positioned at the body.
   * `type`, when given, is a varint written before the size (lite-03+ typed responses, SETUP).
   */
  static message(bodySize: number, type?: number): ByteWriter {
    const lead = type === undefined ? 0 : varintSize(type);
    const writer = new ByteWriter(lead + varintSize(bodySize) + bodySize);
    if (type !== undefined) writer.varint(type);
    return writer.varint(bodySize);
  }

  /** One raw byte. */
  u8(value: number): this {
    this.buf[this.#pos++] = value;
    return this;
  }

  /** Big-endian 16-bit integer. */
  u16(value: number): this {
    this.buf[this.#pos++] = value >>> 8;
    this.buf[this.#pos++] = value & 0xff;
    return this;
  }

  /** 0 or 1. */
  bool(value: boolean): this {
    this.buf[this.#pos++] = value ? 1 : 0;
    return this;
  }

  /** Minimal-length varint. */
  varint(value: number): this {
    this.#pos = writeVarint(this.buf, this.#pos, value);
    return this;
  }

  /** Minimal-length 62-bit varint. */
  varintBig(value: bigint): this {
    this.#pos = writeVarintBig(this.buf, this.#pos, value);
    return this;
  }

  /** Minimal-length leading-ones varint (moq-transport draft-17). */
  leadingOnes(value: number): this {
    this.#pos = writeLeadingOnes(this.buf, this.#pos, value);
    return this;
  }

  /** Minimal-length leading-ones varint of the full 64-bit range. */
  leadingOnesBig(value: bigint): this {
    this.#pos = writeLeadingOnesBig(this.buf, this.#pos, value);
    return this;
  }

  /** Raw bytes. */
  bytes(value: Uint8Array): this {
    this.buf.set(value, this.#pos);
    this.#pos += value.byteLength;
    return this;
  }

  /** Varint length then bytes (strings are passed pre-encoded with {@link utf8}). */
  lengthPrefixed(value: Uint8Array): this {
    return this.varint(value.byteLength).bytes(value);
  }

  /** The filled buffer; asserts the size computation matched what was written. */
  finish(): Uint8Array {
    if (this.#pos !== this.buf.byteLength) {
      throw new Error(`encoder wrote ${this.#pos} of ${this.buf.byteLength} bytes (size computation bug)`);
    }
    return this.buf;
  }
}
