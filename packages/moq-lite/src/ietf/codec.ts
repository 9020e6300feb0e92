/**
 * The field layer of the moq-transport codecs, on top of the shared byte primitives: varints in
 * the negotiated draft's flavour (QUIC for 14 to 16, leading-ones for 17), namespaces (tuples of
 * non-empty UTF-8 fields, at most 32, at most 4096 bytes with the track name), reason phrases,
 * locations, and key-value pairs with absolute (14/15) or delta-encoded (16/17) types.
 *
 * Control messages are `varint type`, a big-endian u16 length, and exactly that many bytes of
 * payload. Encoders describe a message once as a sequence of fields written to an
 * {@link IetfSink}; {@link encodeControlMessage} runs that description against a sizer and then
 * against a writer of exactly the computed size, so every message is one allocation.
 */
import { ProtocolViolationError } from "../error.ts";
import { ByteReader, ByteWriter, utf8 } from "../wire/bytes.ts";
import {
  leadingOnesSize,
  leadingOnesSizeBig,
  MAX_SAFE_VARINT,
  varintSize,
  varintSizeBig,
} from "../wire/varint.ts";
import { type IetfVersion, usesDeltaTypes, usesLeadingOnes } from "./version.ts";

/** Most fields a namespace tuple may have. */
export const MAX_NAMESPACE_FIELDS = 32;
/** Longest full track name (namespace fields plus track name), in bytes. */
export const MAX_FULL_TRACK_NAME_BYTES = 4096;
/** Longest reason phrase, in bytes. */
export const MAX_REASON_BYTES = 1024;
/** Longest value of an odd-typed key-value pair. */
export const MAX_KEY_VALUE_BYTES = 0xffff;
/** Most key-value pairs accepted in one message. */
export const MAX_KEY_VALUE_PAIRS = 64;
/** Largest control message payload (its length is a u16). */
export const MAX_CONTROL_MESSAGE_BYTES = 0xffff;

const lenientUtf8 = new TextDecoder("utf-8");
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A position in a track: group and object. */
export interface IetfLocation {
  readonly group: number;
  readonly object: number;
}

/** Reads the fields of one moq-transport message body, with the draft's varint flavour. */
export class IetfReader {
  readonly version: IetfVersion;
  readonly #reader: ByteReader;
  readonly #what: string;
  readonly #leadingOnes: boolean;

  /** A reader over `body`; `what` names the message in error messages. */
  constructor(body: Uint8Array, what: string, version: IetfVersion) {
    this.version = version;
    this.#reader = new ByteReader(body, what);
    this.#what = what;
    this.#leadingOnes = usesLeadingOnes(version);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#reader.remaining;
  }

  /** A varint up to 2^53-1, optionally bounded by `max`. */
  varint(field: string, max: number = MAX_SAFE_VARINT): number {
    return this.#leadingOnes ? this.#reader.leadingOnes(field, max) : this.#reader.varint(field, max);
  }

  /** A varint of the full range (62 bits, or 64 for draft-17). */
  varintBig(field: string): bigint {
    return this.#leadingOnes ? this.#reader.leadingOnesBig(field) : this.#reader.varintBig(field);
  }

  /** One raw byte. */
  u8(field: string): number {
    return this.#reader.u8(field);
  }

  /** A byte that must be 0 or 1. */
  bool(field: string): boolean {
    return this.#reader.bool(field);
  }

  /** `n` raw bytes, as a view. */
  bytes(n: number, field: string): Uint8Array {
    return this.#reader.bytes(n, field);
  }

  /** A varint length (≤ `max`) and that many bytes, as a view. */
  lengthPrefixed(field: string, max: number): Uint8Array {
    return this.#reader.bytes(this.varint(`${field} length`, max), field);
  }

  /** A length-prefixed UTF-8 string of at most `max` bytes. */
  string(field: string, max: number): string {
    return this.#utf8(this.lengthPrefixed(field, max), field);
  }

  /** A reason phrase (≤ 1024 bytes; invalid UTF-8 is replaced, since it is only diagnostics). */
  reason(field = "reason phrase"): string {
    return lenientUtf8.decode(this.lengthPrefixed(field, MAX_REASON_BYTES));
  }

  /** A Location: group and object varints. */
  location(field: string): IetfLocation {
    const group = this.varint(`${field} group`);
    const object = this.varint(`${field} object`);
    return { group, object };
  }

  /** A namespace tuple: at most 32 non-empty UTF-8 fields. */
  namespace(field = "track namespace"): string[] {
    const count = this.varint(`${field} field count`, MAX_NAMESPACE_FIELDS);
    const fields: string[] = [];
    let total = 0;
    for (let i = 0; i < count; i++) {
      const raw = this.lengthPrefixed(`${field} field`, MAX_FULL_TRACK_NAME_BYTES);
      if (raw.byteLength === 0) {
        throw new ProtocolViolationError(`${this.#what}: ${field} has an empty field`);
      }
      total += raw.byteLength;
      if (total > MAX_FULL_TRACK_NAME_BYTES) {
        throw new ProtocolViolationError(
          `${this.#what}: ${field} is longer than ${MAX_FULL_TRACK_NAME_BYTES} bytes`,
          "MOQ_BOUNDS_EXCEEDED",
        );
      }
      fields.push(this.#utf8(raw, `${field} field`));
    }
    return fields;
  }

  /** A namespace and a track name, together at most 4096 bytes. */
  fullTrackName(): { namespace: string[]; track: string } {
    const namespace = this.namespace();
    let used = 0;
    for (const field of namespace) used += utf8ByteLength(field);
    const track = this.string("track name", MAX_FULL_TRACK_NAME_BYTES - used);
    return { namespace, track };
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    return this.#reader.rest();
  }

  /** Asserts the body was consumed exactly. */
  finish(): void {
    this.#reader.finish();
  }

  #utf8(raw: Uint8Array, field: string): string {
    try {
      return strictUtf8.decode(raw);
    } catch {
      throw new ProtocolViolationError(`${this.#what}: ${field} is not valid UTF-8`, "MOQ_DECODE");
    }
  }
}

/** UTF-8 length of `value` without allocating. */
export function utf8ByteLength(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < value.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Where an encoder writes fields: a sizer first, then a writer of exactly the computed size. */
export interface IetfSink {
  /** A varint in the draft's flavour. */
  varint(value: number): IetfSink;
  /** A varint of the full range in the draft's flavour. */
  varintBig(value: bigint): IetfSink;
  /** One raw byte. */
  u8(value: number): IetfSink;
  /** Raw bytes. */
  bytes(value: Uint8Array): IetfSink;
  /** A varint length, then the bytes. */
  lengthPrefixed(value: Uint8Array): IetfSink;
}

/** Counts the bytes an encoder would write. */
export class IetfSizer implements IetfSink {
  size = 0;
  readonly #leadingOnes: boolean;

  constructor(version: IetfVersion) {
    this.#leadingOnes = usesLeadingOnes(version);
  }

  varint(value: number): this {
    this.size += this.#leadingOnes ? leadingOnesSize(value) : varintSize(value);
    return this;
  }

  varintBig(value: bigint): this {
    this.size += this.#leadingOnes ? leadingOnesSizeBig(value) : varintSizeBig(value);
    return this;
  }

  u8(_value: number): this {
    this.size += 1;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.size += value.byteLength;
    return this;
  }

  lengthPrefixed(value: Uint8Array): this {
    return this.varint(value.byteLength).bytes(value);
  }
}

/** Writes fields into a buffer of a size computed in advance. */
export class IetfWriter implements IetfSink {
  readonly #writer: ByteWriter;
  readonly #leadingOnes: boolean;

  /** A writer over a new buffer of exactly `size` bytes. */
  constructor(size: number, version: IetfVersion) {
    this.#writer = new ByteWriter(size);
    this.#leadingOnes = usesLeadingOnes(version);
  }

  varint(value: number): this {
    if (this.#leadingOnes) this.#writer.leadingOnes(value);
    else this.#writer.varint(value);
    return this;
  }

  varintBig(value: bigint): this {
    if (this.#leadingOnes) this.#writer.leadingOnesBig(value);
    else this.#writer.varintBig(value);
    return this;
  }

  u8(value: number): this {
    this.#writer.u8(value);
    return this;
  }

  /** A big-endian u16 (the control message length). */
  u16(value: number): this {
    this.#writer.u16(value);
    return this;
  }

  bytes(value: Uint8Array): this {
    this.#writer.bytes(value);
    return this;
  }

  lengthPrefixed(value: Uint8Array): this {
    return this.varint(value.byteLength).bytes(value);
  }

  /** The filled buffer; asserts the size computation matched what was written. */
  finish(): Uint8Array {
    return this.#writer.finish();
  }
}

/** The fields written by `body` alone (no type, no length), e.g. a parameter value. */
export function encodeFields(version: IetfVersion, body: (sink: IetfSink) => void): Uint8Array {
  const sizer = new IetfSizer(version);
  body(sizer);
  const writer = new IetfWriter(sizer.size, version);
  body(writer);
  return writer.finish();
}

/** A control message: `varint type`, u16 payload length, payload written by `body`. */
export function encodeControlMessage(
  type: number,
  version: IetfVersion,
  body: (sink: IetfSink) => void,
): Uint8Array {
  const sizer = new IetfSizer(version);
  body(sizer);
  if (sizer.size > MAX_CONTROL_MESSAGE_BYTES) {
    throw new RangeError(
      `control message 0x${type.toString(16)} of ${sizer.size} bytes does not fit its u16 length`,
    );
  }
  const lead = usesLeadingOnes(version) ? leadingOnesSize(type) : varintSize(type);
  const writer = new IetfWriter(lead + 2 + sizer.size, version);
  writer.varint(type).u16(sizer.size);
  body(writer);
  return writer.finish();
}

/** Pre-encoded namespace fields, so an encoder does not convert strings twice. */
export type EncodedNamespace = readonly Uint8Array[];

/** UTF-8 fields of a namespace (throws RangeError for what the wire cannot carry). */
export function encodeNamespace(fields: readonly string[]): EncodedNamespace {
  if (fields.length > MAX_NAMESPACE_FIELDS) {
    throw new RangeError(`namespace has ${fields.length} fields (at most ${MAX_NAMESPACE_FIELDS})`);
  }
  return fields.map((field) => {
    if (field.length === 0) throw new RangeError("namespace fields must not be empty");
    return utf8(field);
  });
}

/** Writes a namespace tuple. */
export function writeNamespace(sink: IetfSink, fields: EncodedNamespace): void {
  sink.varint(fields.length);
  for (const field of fields) sink.lengthPrefixed(field);
}

/** Writes a reason phrase (truncated to 1024 bytes on a character boundary). */
export function writeReason(sink: IetfSink, reason: string): void {
  sink.lengthPrefixed(truncateUtf8(reason, MAX_REASON_BYTES));
}

/** UTF-8 bytes of `value`, cut to at most `max` bytes without splitting a character. */
export function truncateUtf8(value: string, max: number): Uint8Array {
  const bytes = utf8(value);
  if (bytes.byteLength <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Key-value pairs: even types carry a varint, odd types a byte string. */
export type KeyValuePairs = ReadonlyMap<number, bigint | Uint8Array>;

/**
 * Reads key-value pairs. With `count` undefined they run to the end of the body (draft-17 Setup
 * Options and Properties). Types are deltas from the previous type in drafts 16 and 17. Types
 * above 2^53 are read and skipped (no type this package understands is that large);
 * `duplicates` decides whether a repeated known type is a violation.
 */
export function readKeyValuePairs(
  reader: IetfReader,
  what: string,
  count: number | undefined,
  known: (type: number) => boolean = () => true,
): Map<number, bigint | Uint8Array> {
  const pairs = new Map<number, bigint | Uint8Array>();
  const delta = usesDeltaTypes(reader.version);
  let type = 0n;
  for (let i = 0; count === undefined ? reader.remaining > 0 : i < count; i++) {
    if (i >= MAX_KEY_VALUE_PAIRS) {
      throw new ProtocolViolationError(
        `${what}: more than ${MAX_KEY_VALUE_PAIRS} parameters`,
        "MOQ_BOUNDS_EXCEEDED",
      );
    }
    const step = reader.varintBig(`${what} type`);
    type = delta && i > 0 ? type + step : step;
    const value: bigint | Uint8Array =
      type % 2n === 0n
        ? reader.varintBig(`${what} 0x${type.toString(16)}`)
        : reader.lengthPrefixed(`${what} 0x${type.toString(16)}`, MAX_KEY_VALUE_BYTES);
    if (type > BigInt(MAX_SAFE_VARINT)) continue;
    const key = Number(type);
    if (pairs.has(key) && known(key)) {
      throw new ProtocolViolationError(`${what}: parameter 0x${key.toString(16)} appears twice`);
    }
    if (!pairs.has(key)) pairs.set(key, value);
  }
  return pairs;
}

/** Writes key-value pairs in ascending type order (count prefix included unless `withCount` is false). */
export function writeKeyValuePairs(
  sink: IetfSink,
  version: IetfVersion,
  pairs: KeyValuePairs,
  withCount = true,
): void {
  const keys = [...pairs.keys()].sort((a, b) => a - b);
  if (withCount) sink.varint(keys.length);
  const delta = usesDeltaTypes(version);
  let previous = 0;
  for (const key of keys) {
    const value = pairs.get(key)!;
    if ((key % 2 === 0) !== (typeof value === "bigint")) {
      throw new TypeError(
        `parameter 0x${key.toString(16)} needs a ${key % 2 === 0 ? "varint" : "byte"} value`,
      );
    }
    sink.varint(delta ? key - previous : key);
    previous = key;
    if (typeof value === "bigint") sink.varintBig(value);
    else sink.lengthPrefixed(value);
  }
}
