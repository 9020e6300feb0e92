/**
 * A bounded, synchronous ISO BMFF reader. Box headers are validated against their parent's
 * extent, every count is checked against the bytes that could hold it, and the only error it
 * raises is {@link PackagerError}. Payloads are zero-copy `subarray` views.
 */

import { PackagerError } from "../errors.ts";

/** Children listed per container box before the reader gives up (far above any real file). */
export const MAX_CHILD_BOXES = 4096;

/** Where one box sits inside the buffer being read. */
export interface BoxRange {
  /** Four-character type. */
  readonly type: string;
  /** Offset of the size field. */
  readonly start: number;
  /** Offset of the first payload byte (after size, type, largesize and uuid). */
  readonly payload: number;
  /** Offset just past the box. */
  readonly end: number;
}

function typeAt(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset]!, bytes[offset + 1]!, bytes[offset + 2]!, bytes[offset + 3]!);
}

/** Printable form of a four-character code for error messages (binary junk becomes hex). */
function printableType(type: string): string {
  return /^[\x20-\x7e]{4}$/.test(type)
    ? JSON.stringify(type)
    : `0x${[...type].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Lists the boxes that exactly tile `[start, end)`. A size of 0 means "to the end of the
 * parent"; a size of 1 means a 64-bit largesize follows. Throws PACKAGER_MALFORMED_BOX when a box
 * overruns its parent or the bytes do not tile exactly.
 */
export function listBoxes(bytes: Uint8Array, start: number, end: number, context: string): BoxRange[] {
  const out: BoxRange[] = [];
  let offset = start;
  while (offset < end) {
    if (out.length >= MAX_CHILD_BOXES) {
      throw new PackagerError(
        "PACKAGER_LIMIT_EXCEEDED",
        `${context} holds more than ${MAX_CHILD_BOXES} boxes; refusing to read further`,
      );
    }
    out.push(readBoxHeader(bytes, offset, end, context));
    offset = out[out.length - 1]!.end;
  }
  return out;
}

/** Reads one box header at `offset`, checking it against `limit` (the parent's end). */
export function readBoxHeader(bytes: Uint8Array, offset: number, limit: number, context: string): BoxRange {
  if (limit - offset < 8) {
    throw new PackagerError(
      "PACKAGER_MALFORMED_BOX",
      `${context}: ${limit - offset} trailing byte(s) at offset ${offset} are too short for a box header`,
    );
  }
  const size32 =
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>>
    0;
  const type = typeAt(bytes, offset + 4);
  let payload = offset + 8;
  let size: number;
  if (size32 === 1) {
    if (limit - offset < 16) {
      throw new PackagerError(
        "PACKAGER_MALFORMED_BOX",
        `${context}: box ${printableType(type)} at offset ${offset} declares a largesize but is truncated`,
      );
    }
    const high =
      ((bytes[offset + 8]! << 24) |
        (bytes[offset + 9]! << 16) |
        (bytes[offset + 10]! << 8) |
        bytes[offset + 11]!) >>>
      0;
    const low =
      ((bytes[offset + 12]! << 24) |
        (bytes[offset + 13]! << 16) |
        (bytes[offset + 14]! << 8) |
        bytes[offset + 15]!) >>>
      0;
    size = high * 2 ** 32 + low;
    payload += 8;
  } else if (size32 === 0) {
    size = limit - offset;
  } else {
    size = size32;
  }
  if (type === "uuid") payload += 16;
  if (size < payload - offset || size > limit - offset) {
    throw new PackagerError(
      "PACKAGER_MALFORMED_BOX",
      `${context}: box ${printableType(type)} at offset ${offset} declares ${size} bytes but ${limit - offset} remain (header needs ${payload - offset})`,
    );
  }
  return { type, start: offset, payload, end: offset + size };
}

/** The first child of `type`, or undefined. */
export function findBox(boxes: readonly BoxRange[], type: string): BoxRange | undefined {
  for (const box of boxes) if (box.type === type) return box;
  return undefined;
}

/** The first child of `type`; throws PACKAGER_MISSING_BOX when absent. */
export function requireBox(boxes: readonly BoxRange[], type: string, context: string): BoxRange {
  const box = findBox(boxes, type);
  if (!box) throw new PackagerError("PACKAGER_MISSING_BOX", `${context} has no ${type} box`);
  return box;
}

/**
 * A pull cursor over a byte range (usually one box's payload). Every read checks the remaining
 * length and throws PACKAGER_MALFORMED_BOX naming the box when it would run past the end.
 */
export class FieldCursor {
  readonly bytes: Uint8Array;
  readonly end: number;
  readonly context: string;
  offset: number;

  /** A cursor over `[start, end)` of `bytes`; `context` names the box in error messages. */
  constructor(bytes: Uint8Array, start: number, end: number, context: string) {
    this.bytes = bytes;
    this.offset = start;
    this.end = end;
    this.context = context;
  }

  /** A cursor over a box's payload. */
  static of(bytes: Uint8Array, box: BoxRange): FieldCursor {
    return new FieldCursor(bytes, box.payload, box.end, box.type);
  }

  /** Bytes left before the end. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Throws unless at least `length` bytes remain. */
  need(length: number, what: string): void {
    if (length > this.end - this.offset) {
      throw new PackagerError(
        "PACKAGER_MALFORMED_BOX",
        `${this.context}: ${what} needs ${length} byte(s) at offset ${this.offset} but only ${this.end - this.offset} remain`,
      );
    }
  }

  /** An unsigned 8-bit value. */
  u8(what = "field"): number {
    this.need(1, what);
    return this.bytes[this.offset++]!;
  }

  /** An unsigned big-endian 16-bit value. */
  u16(what = "field"): number {
    this.need(2, what);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 2;
    return (b[o]! << 8) | b[o + 1]!;
  }

  /** An unsigned big-endian 24-bit value. */
  u24(what = "field"): number {
    this.need(3, what);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 3;
    return (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;
  }

  /** An unsigned big-endian 32-bit value. */
  u32(what = "field"): number {
    this.need(4, what);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  /** A signed big-endian 32-bit value. */
  i32(what = "field"): number {
    return this.u32(what) | 0;
  }

  /** An unsigned big-endian 64-bit value; throws PACKAGER_LIMIT_EXCEEDED above 2^53 - 1. */
  u64(what = "field"): number {
    const high = this.u32(what);
    const low = this.u32(what);
    if (high > 0x1fffff) {
      throw new PackagerError(
        "PACKAGER_LIMIT_EXCEEDED",
        `${this.context}: ${what} is above 2^53 - 1 and cannot be represented exactly`,
      );
    }
    return high * 2 ** 32 + low;
  }

  /** A zero-copy view of the next `length` bytes. */
  take(length: number, what = "field"): Uint8Array {
    this.need(length, what);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Skips `length` bytes. */
  skip(length: number, what = "reserved bytes"): void {
    this.need(length, what);
    this.offset += length;
  }

  /** A full box's version and flags. */
  fullHeader(): { version: number; flags: number } {
    const word = this.u32("version and flags");
    return { version: word >>> 24, flags: word & 0xffffff };
  }
}
