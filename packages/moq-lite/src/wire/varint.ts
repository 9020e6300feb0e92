/**
 * QUIC variable-length integers (RFC 9000 §16): the top two bits of the first byte give the
 * length (1, 2, 4 or 8 bytes), the rest is the big-endian value, up to 2^62-1. Writers always
 * use the minimal length; readers accept any length. The `number` functions are the fast path
 * for values up to 2^53-1 (every length, count, id and sequence this package handles); the
 * `bigint` ones cover the full 62-bit range.
 */

/** Largest value a varint can hold: 2^62-1. */
export const MAX_VARINT: bigint = (1n << 62n) - 1n;

/** Largest value the `number` functions accept: 2^53-1. */
export const MAX_SAFE_VARINT: number = Number.MAX_SAFE_INTEGER;

const TWO_POW_32 = 0x1_0000_0000;

/** Encoded size in bytes of `value` (a non-negative safe integer). */
export function varintSize(value: number): number {
  if (value < 0x40) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x4000_0000) return 4;
  return 8;
}

/** Encoded size in bytes of a 62-bit `value`. */
export function varintSizeBig(value: bigint): number {
  if (value < 0x40n) return 1;
  if (value < 0x4000n) return 2;
  if (value < 0x4000_0000n) return 4;
  return 8;
}

/**
 * Writes `value` at `offset` with the minimal length and returns the offset after it. The caller
 * sized the buffer; values outside 0..2^53-1 are a programming error and throw RangeError.
 */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint value ${value} is invalid`);
  if (value < 0x40) {
    buf[offset] = value;
    return offset + 1;
  }
  if (value < 0x4000) {
    buf[offset] = 0x40 | (value >>> 8);
    buf[offset + 1] = value & 0xff;
    return offset + 2;
  }
  if (value < 0x4000_0000) {
    buf[offset] = 0x80 | (value >>> 24);
    buf[offset + 1] = (value >>> 16) & 0xff;
    buf[offset + 2] = (value >>> 8) & 0xff;
    buf[offset + 3] = value & 0xff;
    return offset + 4;
  }
  const hi = Math.floor(value / TWO_POW_32);
  const lo = value >>> 0;
  buf[offset] = 0xc0 | (hi >>> 24);
  buf[offset + 1] = (hi >>> 16) & 0xff;
  buf[offset + 2] = (hi >>> 8) & 0xff;
  buf[offset + 3] = hi & 0xff;
  buf[offset + 4] = lo >>> 24;
  buf[offset + 5] = (lo >>> 16) & 0xff;
  buf[offset + 6] = (lo >>> 8) & 0xff;
  buf[offset + 7] = lo & 0xff;
  return offset + 8;
}

/** Writes a 62-bit `value` at `offset` with the minimal length; returns the offset after it. */
export function writeVarintBig(buf: Uint8Array, offset: number, value: bigint): number {
  if (value < 0n || value > MAX_VARINT) throw new RangeError(`varint value ${value} is out of range`);
  if (value <= BigInt(MAX_SAFE_VARINT)) return writeVarint(buf, offset, Number(value));
  const hi = Number(value >> 32n);
  const lo = Number(value & 0xffff_ffffn);
  buf[offset] = 0xc0 | (hi >>> 24);
  buf[offset + 1] = (hi >>> 16) & 0xff;
  buf[offset + 2] = (hi >>> 8) & 0xff;
  buf[offset + 3] = hi & 0xff;
  buf[offset + 4] = lo >>> 24;
  buf[offset + 5] = (lo >>> 16) & 0xff;
  buf[offset + 6] = (lo >>> 8) & 0xff;
  buf[offset + 7] = lo & 0xff;
  return offset + 8;
}

/** `value` encoded on its own (minimal length). */
export function encodeVarint(value: number): Uint8Array {
  const out = new Uint8Array(varintSize(value));
  writeVarint(out, 0, value);
  return out;
}

/** Length in bytes of the varint whose first byte is `first`. */
export function varintLength(first: number): number {
  return 1 << (first >>> 6);
}

/**
 * Decodes the varint at `offset`, which must be complete (check {@link varintLength} first).
 * Returns -1 when the value exceeds 2^53-1, so callers can report it in their own terms.
 */
export function readVarintAt(buf: Uint8Array, offset: number): number {
  const first = buf[offset]!;
  switch (first >>> 6) {
    case 0:
      return first;
    case 1:
      return ((first & 0x3f) << 8) | buf[offset + 1]!;
    case 2:
      return (
        (first & 0x3f) * 0x100_0000 + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!)
      );
    default: {
      const hi =
        (first & 0x3f) * 0x100_0000 + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!);
      if (hi > 0x1f_ffff) return -1;
      const lo =
        buf[offset + 4]! * 0x100_0000 +
        ((buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!);
      return hi * TWO_POW_32 + lo;
    }
  }
}

/** Decodes the complete varint at `offset` as a bigint (any value up to 2^62-1). */
export function readVarintBigAt(buf: Uint8Array, offset: number): bigint {
  const length = varintLength(buf[offset]!);
  let value = BigInt(buf[offset]! & 0x3f);
  for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(buf[offset + i]!);
  return value;
}

// ---- Leading-ones varints (moq-transport draft-17) ----
//
// The count of leading 1 bits in the first byte gives the length: 0xxxxxxx is 1 byte (7 bits),
// 10xxxxxx 2 bytes (14), 110xxxxx 3 (21), 1110xxxx 4 (28), 11110xxx 5 (35), 111110xx 6 (42),
// 11111110 8 bytes (56) and 11111111 9 bytes (64). The prefix 1111110x is reserved.

/** Largest value a leading-ones varint can hold: 2^64-1. */
export const MAX_LEADING_ONES: bigint = (1n << 64n) - 1n;

const LEADING_ONES_LIMITS = [0x80, 0x4000, 0x20_0000, 0x1000_0000, 0x8_0000_0000, 0x400_0000_0000];
const LEADING_ONES_MASKS = [0x00, 0x80, 0xc0, 0xe0, 0xf0, 0xf8];

/** Encoded size in bytes of `value` (a non-negative safe integer) as a leading-ones varint. */
export function leadingOnesSize(value: number): number {
  for (let i = 0; i < LEADING_ONES_LIMITS.length; i++) if (value < LEADING_ONES_LIMITS[i]!) return i + 1;
  return 8;
}

/** Encoded size in bytes of a 64-bit `value` as a leading-ones varint. */
export function leadingOnesSizeBig(value: bigint): number {
  if (value <= BigInt(MAX_SAFE_VARINT)) return leadingOnesSize(Number(value));
  return value < 1n << 56n ? 8 : 9;
}

/**
 * Length in bytes of the leading-ones varint whose first byte is `first`, or 0 for the reserved
 * prefix 1111110x.
 */
export function leadingOnesLength(first: number): number {
  if (first < 0x80) return 1;
  if (first < 0xc0) return 2;
  if (first < 0xe0) return 3;
  if (first < 0xf0) return 4;
  if (first < 0xf8) return 5;
  if (first < 0xfc) return 6;
  if (first < 0xfe) return 0;
  return first === 0xfe ? 8 : 9;
}

/** Writes `value` (0..2^53-1) as a minimal leading-ones varint at `offset`; returns the offset after it. */
export function writeLeadingOnes(buf: Uint8Array, offset: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint value ${value} is invalid`);
  const size = leadingOnesSize(value);
  if (size === 8) {
    buf[offset] = 0xfe;
    let rest = value;
    for (let i = 7; i >= 1; i--) {
      buf[offset + i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
    return offset + 8;
  }
  let rest = value;
  for (let i = size - 1; i >= 1; i--) {
    buf[offset + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  buf[offset] = LEADING_ONES_MASKS[size - 1]! | rest;
  return offset + size;
}

/** Writes a 64-bit `value` as a minimal leading-ones varint; returns the offset after it. */
export function writeLeadingOnesBig(buf: Uint8Array, offset: number, value: bigint): number {
  if (value < 0n || value > MAX_LEADING_ONES) throw new RangeError(`varint value ${value} is out of range`);
  if (value <= BigInt(MAX_SAFE_VARINT)) return writeLeadingOnes(buf, offset, Number(value));
  const size = leadingOnesSizeBig(value);
  buf[offset] = size === 8 ? 0xfe : 0xff;
  let rest = value;
  for (let i = size - 1; i >= 1; i--) {
    buf[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return offset + size;
}

/** `value` encoded on its own as a minimal leading-ones varint. */
export function encodeLeadingOnes(value: number): Uint8Array {
  const out = new Uint8Array(leadingOnesSize(value));
  writeLeadingOnes(out, 0, value);
  return out;
}

/**
 * Decodes the complete leading-ones varint at `offset` (check {@link leadingOnesLength} first; the
 * reserved prefix must already have been refused). Returns -1 when the value exceeds 2^53-1.
 */
export function readLeadingOnesAt(buf: Uint8Array, offset: number): number {
  const first = buf[offset]!;
  const length = leadingOnesLength(first);
  let value = length >= 8 ? 0 : first & (0xff >>> length);
  for (let i = 1; i < length; i++) {
    value = value * 256 + buf[offset + i]!;
    if (value > MAX_SAFE_VARINT) return -1;
  }
  return value;
}

/** Decodes the complete leading-ones varint at `offset` as a bigint (any value up to 2^64-1). */
export function readLeadingOnesBigAt(buf: Uint8Array, offset: number): bigint {
  const first = buf[offset]!;
  const length = leadingOnesLength(first);
  let value = BigInt(length >= 8 ? 0 : first & (0xff >>> length));
  for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(buf[offset + i]!);
  return value;
}
